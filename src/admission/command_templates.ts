/**
 * `$(VAR)` with integrity: each wrapped proxy-mode container whose signed command holds kubelet
 * syntax (`$(NAME)` or `$$`) gets `PIGGY_COMMAND_TEMPLATE`: the command as written and the literal
 * variables it refers to (see `src/pod/command_template.ts`). piggy-env proves its argv is that
 * template expanded and sends the template's signature. Pure: the input is not changed; the result
 * shares what it did not write with it.
 *
 * @module
 */

import type { Container, EnvVar, Pod } from "kubernetes-types/core/v1.d.ts";
import { COMMAND_SEPARATOR, ENV, PIGGY_UID_ANNOTATION } from "../constants.ts";
import { parseUidAnnotation } from "../pod/piggy_uid.ts";
import { commandSignature } from "../pod/signature.ts";
import { isWrapped } from "../pod/container_refs.ts";
import { changeContainers, writablePod } from "../pod/pod_copy.ts";
import {
  formatCommandTemplate,
  hasKubeletSyntax,
  literalVariables,
  referencedNames,
} from "../pod/command_template.ts";

/** What {@link withCommandTemplates} returns. */
export interface CommandTemplateResult {
  /** The pod with the templates set (and stray ones removed). */
  pod: Pod;
  /** One line per container whose command refers to variables that are not literal values. */
  warnings: string[];
}

/** The signed command of a wrapped container: its argv after the launcher's `--`. */
function signedCommand(container: Container): string[] {
  const argv = [...(container.command ?? []).slice(1), ...(container.args ?? [])];
  const separator = argv.indexOf(COMMAND_SEPARATOR);
  return separator === -1 ? [...(container.args ?? [])] : argv.slice(separator + 1);
}

function sendsSignature(container: Container): boolean {
  return isWrapped(container) && (container.env ?? []).some((entry) => entry?.name === ENV.UID);
}

/**
 * Sets `PIGGY_COMMAND_TEMPLATE` on each wrapped proxy-mode container whose command the kubelet
 * would change, and removes it from the others (a template given in the pod spec is never
 * trusted). With `enforceIntegrity`, warns about references to variables that are not literal.
 */
export function withCommandTemplates(
  pod: Pod,
  options: { enforceIntegrity: boolean },
): CommandTemplateResult {
  const warnings: string[] = [];
  // Read only for a container whose command holds kubelet syntax (most hold none).
  let signatures: ReadonlyMap<string, string> | undefined;
  const signatureOf = (uid: string) =>
    (signatures ??= parseUidAnnotation(pod.metadata?.annotations?.[PIGGY_UID_ANNOTATION])
      .signatures).get(uid);
  // The new env of each container it changes; the pod is copied (on write) only when there is one.
  const envs = new Map<Container, EnvVar[]>();
  for (
    const container of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]
  ) {
    if (!container || !sendsSignature(container)) continue;
    const given = container.env ?? [];
    const command = signedCommand(container);
    // Only where the launcher's proof ends in the recorded signature (admission signs the command
    // as the spec holds it, image text with its `$` escaped; Go Piggy's pods may differ).
    if (
      !hasKubeletSyntax(command) ||
      signatureOf(given.find((entry) => entry?.name === ENV.UID)?.value ?? "") !==
        commandSignature(command)
    ) {
      // A template the spec brings is never trusted: it is removed.
      if (given.some((entry) => entry?.name === ENV.COMMAND_TEMPLATE)) {
        envs.set(container, given.filter((entry) => entry?.name !== ENV.COMMAND_TEMPLATE));
      }
      continue;
    }
    const env = given.filter((entry) => entry?.name !== ENV.COMMAND_TEMPLATE);
    const literal = literalVariables({ env }, { ignore: ENV.COMMAND_TEMPLATE });
    const referenced = [...new Set(command.flatMap((arg) => referencedNames(arg)))];
    const template: EnvVar = {
      name: ENV.COMMAND_TEMPLATE,
      value: formatCommandTemplate(command, referenced.filter((name) => literal.has(name))),
    };
    // Always last: a second admission removes and appends it again, so nothing moves.
    envs.set(container, [...env, template]);
    const others = referenced.filter((name) => !literal.has(name));
    if (options.enforceIntegrity && others.length > 0) {
      warnings.push(
        `Container "${container.name}": ${
          others.map((name) => `$(${name})`).join(", ")
        } in command or args ${others.length === 1 ? "is" : "are"} not set by a literal ` +
          "value in its env (a ConfigMap, Secret, the downward API or envFrom can change after " +
          "admission): the kubelet expands it when defined, and /secret then refuses the container",
      );
    }
  }
  if (envs.size === 0 || !pod.spec) return { pod, warnings };
  const copy = writablePod(pod);
  changeContainers(copy.spec!, (container) => envs.has(container), (own, original) => {
    own.env = envs.get(original)!;
  });
  return { pod: copy, warnings };
}
