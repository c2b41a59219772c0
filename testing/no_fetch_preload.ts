/**
 * Preloaded into a launcher process by tests (`deno run --preload`, see
 * `LauncherSpec.denoFlags`): the first read of the global `fetch`, `Request`, `Response` or
 * `Headers` ends the process with exit code 97 and a line naming it, so a test shows that a start
 * never loads Deno's `fetch` implementation.
 *
 * @module
 */

/** Exit code of a process that read one of the guarded globals. */
export const FETCH_READ_EXIT_CODE = 97;

for (const name of ["fetch", "Request", "Response", "Headers"]) {
  Object.defineProperty(globalThis, name, {
    configurable: true,
    get(): never {
      Deno.stderr.writeSync(new TextEncoder().encode(`piggy-test: globalThis.${name} was read\n`));
      return Deno.exit(FETCH_READ_EXIT_CODE);
    },
  });
}
