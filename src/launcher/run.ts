/**
 * piggy-env from arguments to exit code: parse, install or fetch, resolve, start the command.
 * All I/O comes in as {@link PiggyEnvDeps}, so the whole flow is tested with fakes.
 *
 * @module
 */

import { parseGoBool } from "../config/parse.ts";
import { ENV } from "../constants.ts";
import { UsageError } from "../errors.ts";
import { chooseLogLevel, describeError, Logger, type LogSink } from "../log.ts";
import type { SecretSource } from "../secrets/source.ts";
import { parseLauncherArgs, type RunFlags, USAGE } from "./args.ts";
import { VERSION } from "../version.ts";
import {
  type FetchOnce,
  prepareProxyFetch,
  prepareStandaloneFetch,
  type StandaloneSourceSettings,
} from "./fetch.ts";
import { type LauncherOptions, resolveLauncherOptions } from "./options.ts";
import type { ProxyRequest } from "./proxy.ts";
import { buildChildEnvironment, type EnvEntries } from "./resolve.ts";
import { type FetchOutcome, fetchWithRetry } from "./retry.ts";

/** Exit code of a usage error. */
export const EXIT_USAGE = 2;

/** Exit code when secrets cannot be fetched, references stay unresolved or install fails. */
export const EXIT_FAILURE = 1;

/** Starts the command; resolves with the exit code when the process was not replaced. */
export type ExecCommand = (
  command: readonly string[],
  env: ReadonlyArray<readonly [string, string]>,
  logger: Logger,
) => Promise<number>;

/** Everything {@link runPiggyEnv} touches outside itself. */
export interface PiggyEnvDeps {
  /** The launcher's environment, in order. */
  env: EnvEntries;
  /** The running executable (`install` finds the image's launcher directory from it). */
  execPath: string;
  /** Reads a text file (token, CA). */
  readTextFile(path: string): Promise<string>;
  /** Waits. */
  sleep(ms: number): Promise<void>;
  /** Replaces the process with the command (or runs it and returns its exit code). */
  exec: ExecCommand;
  /** Creates the AWS source for standalone mode (it may log AWS reads, never values). */
  createSecretSource(logger: Logger, settings: StandaloneSourceSettings): Promise<SecretSource>;
  /** Writes a line to stdout (only `--help` does). */
  writeStdout(line: string): void;
  /** Writes a plain line to stderr (the usage line after a usage error). */
  writeStderr(line: string): void;
  /** The proxy call. @default requestSecrets */
  requestSecrets?: (request: ProxyRequest) => Promise<Record<string, string>>;
  /** Install step: copies the launcher directory `source`. @default installLauncher */
  install?: (source: string, destination: string) => Promise<string>;
  /** Jitter source. @default Math.random */
  random?: () => number;
  /** Log line writer. @default stderr */
  logSink?: LogSink;
  /**
   * Makes the CA given to the proxy call the only trust anchor of this process's TLS (Deno adds it
   * to its default roots otherwise); called before the first connection when a CA is set and
   * verification is on.
   */
  trustOnlyGivenCa?: () => void;
  /** Prepares {@link exec} (opens libc); called while the fetch is in flight. */
  prepareExec?: () => void;
}

function envLookup(env: EnvEntries): (name: string) => string | undefined {
  const map = new Map(env);
  return (name) => map.get(name);
}

function startupLogger(get: (name: string) => string | undefined, deps: PiggyEnvDeps): Logger {
  // Lenient on purpose: this logger reports the errors, including a bad PIGGY_DEBUG.
  let debug = false;
  try {
    debug = parseGoBool(get(ENV.DEBUG) ?? "false");
  } catch {
    // reported by resolveLauncherOptions() in run mode
  }
  const level = chooseLogLevel(get("LOG_LEVEL"), debug);
  return new Logger({ level, ...(deps.logSink ? { sink: deps.logSink } : {}) });
}

async function fetchSecrets(
  options: LauncherOptions,
  command: readonly string[],
  deps: PiggyEnvDeps,
  logger: Logger,
): Promise<FetchOutcome> {
  let fetchOnce: FetchOnce;
  const fetchDeps = {
    readTextFile: deps.readTextFile,
    envGet: envLookup(deps.env),
    createSecretSource: deps.createSecretSource,
    ...(deps.requestSecrets ? { requestSecrets: deps.requestSecrets } : {}),
  };
  try {
    fetchOnce = options.standalone
      ? await prepareStandaloneFetch(options, fetchDeps, logger)
      : await prepareProxyFetch(options, command, fetchDeps);
  } catch (error) {
    return { ok: false, errors: [describeError(error)], attempts: 0 };
  }
  return await fetchWithRetry(fetchOnce, {
    attempts: options.attempts,
    initialDelayMs: options.initialDelayMs,
    sleep: deps.sleep,
    logger,
    ...(deps.random ? { random: deps.random } : {}),
  });
}

async function run(
  flags: RunFlags,
  command: string[],
  deps: PiggyEnvDeps,
  get: (name: string) => string | undefined,
): Promise<number> {
  let options: LauncherOptions;
  try {
    options = resolveLauncherOptions(flags, get);
  } catch (error) {
    startupLogger(get, deps).error(describeError(error));
    return EXIT_FAILURE;
  }
  const logger = new Logger({
    level: options.logLevel,
    ...(deps.logSink ? { sink: deps.logSink } : {}),
  });
  logger.debug(`Running ${JSON.stringify(command)}`, {
    mode: options.standalone ? "standalone" : "proxy",
    attempts: options.attempts,
  });
  if (options.dnsResolver) {
    logger.debug(`Ignoring ${ENV.DNS_RESOLVER}: the system resolver is used`);
  }

  // The TLS warm-up is the entry's first statement (cli/piggy_env.ts), before this module loads.
  if (
    !options.standalone && /^https:/i.test(options.address.trim()) && !options.skipVerifyTls &&
    (options.caFile || options.caBundle)
  ) deps.trustOnlyGivenCa?.();
  const fetching = fetchSecrets(options, command, deps, logger);
  deps.prepareExec?.();
  const outcome = await fetching;
  if (outcome.ok) {
    logger.info("Request secrets was successful", { attempts: outcome.attempts });
  } else {
    for (const line of outcome.errors) logger.error(line);
    if (!options.ignoreNoEnv) {
      if (outcome.attempts > 0) {
        logger.error(
          options.standalone
            ? "Unable to read secrets from AWS"
            : `Unable to communicate with ${options.address}`,
        );
      }
      return EXIT_FAILURE;
    }
    logger.warn(`Starting without secrets: ${ENV.IGNORE_NO_ENV} is true`);
  }

  const child = buildChildEnvironment(deps.env, outcome.ok ? outcome.secrets : {});
  if (child.invalid.length > 0) {
    const names = child.invalid.map((name) => `[${name}]`).join(", ");
    logger.error(`Cannot use the secret values of ${names}: they contain a NUL byte`);
  }
  if (child.unresolved.length > 0) {
    const names = child.unresolved.map((name) => `[${name}]`).join(", ");
    if (!options.ignoreNoEnv) {
      logger.error(`Cannot start the command: ${names} not found`);
      return EXIT_FAILURE;
    }
    logger.warn(`Starting with unresolved references: ${names}`);
  }
  logger.debug(`Resolved ${child.resolved.length} variables`);
  return await deps.exec(command, child.env, logger);
}

/**
 * Runs piggy-env.
 *
 * @param argv the arguments after the program name
 * @param deps I/O
 * @returns the exit code: 0 for help, version or install, 2 for a usage error, 1 when secrets cannot be
 *   fetched, references stay unresolved, a `PIGGY_*` value is invalid or install fails; otherwise
 *   what `deps.exec` returns (it does not return at all when the process is replaced)
 */
export async function runPiggyEnv(argv: readonly string[], deps: PiggyEnvDeps): Promise<number> {
  const get = envLookup(deps.env);
  let parsed;
  try {
    parsed = parseLauncherArgs(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    startupLogger(get, deps).error(error.message);
    deps.writeStderr(USAGE);
    return EXIT_USAGE;
  }
  switch (parsed.kind) {
    case "help":
      deps.writeStdout(USAGE);
      return 0;
    case "version":
      deps.writeStdout(`piggy-env ${VERSION}`);
      return 0;
    case "install": {
      const logger = startupLogger(get, deps);
      try {
        // Loaded here: a run never installs, and install.ts loads node:fs and node:crypto.
        const { defaultInstallSource, installLauncher } = await import("./install.ts");
        const target = await (deps.install ?? installLauncher)(
          parsed.from ?? defaultInstallSource(deps.execPath),
          parsed.destination,
        );
        logger.info(`Installed piggy-env to ${target}`);
        return 0;
      } catch (error) {
        logger.error(describeError(error));
        return EXIT_FAILURE;
      }
    }
    case "run":
      return await run(parsed.flags, parsed.command, deps, get);
  }
}
