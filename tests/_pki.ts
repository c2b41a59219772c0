/**
 * Test PKI (re-exported from scripts/pki.ts, which `deno task start` also uses).
 *
 * @module
 */

export { type CertPair, createTestCa, type TestCa } from "../scripts/pki.ts";
