/**
 * The version of this build: package.json `version` and the chart's `appVersion` (a test keeps the
 * three equal). Printed by `--version` and exported as the `piggy_build_info` metric.
 *
 * @module
 */

/** Piggy's version. */
export const VERSION = "0.8.0";
