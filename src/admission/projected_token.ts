/**
 * The audience-bound token of wrapped containers in proxy mode: a projected `serviceAccountToken`
 * volume (audience `PIGGY_TOKEN_AUDIENCES`' first entry, {@link TOKEN_EXPIRATION_SECONDS}), mounted
 * read-only only into the containers that run the launcher, with `PIGGY_TOKEN_FILE` pointing at it.
 * A token minted for Piggy is useless against the API server, and the pod's default API token no
 * longer leaves the pod. Pure: the input is not changed; the result shares what it did not write
 * with it.
 *
 * @module
 */

import type { Container, EnvVar, Pod, Volume, VolumeMount } from "kubernetes-types/core/v1.d.ts";
import { ENV, TOKEN_FILE_NAME, TOKEN_MOUNT_PATH, TOKEN_VOLUME_NAME } from "../constants.ts";
import { isWrapped } from "../pod/container_refs.ts";
import { changeContainers, writablePod } from "../pod/pod_copy.ts";

/** Lifetime of the projected token: the API server's minimum; the kubelet refreshes it. */
export const TOKEN_EXPIRATION_SECONDS = 600;

/**
 * `PIGGY_TOKEN_FILE`'s value. Joined, not a template literal: a template makes a V8 cons string,
 * which sends `JSON.stringify` of the whole patch off its fast path.
 */
const TOKEN_FILE = [TOKEN_MOUNT_PATH, TOKEN_FILE_NAME].join("/");

/** True for a container that runs the launcher in proxy mode (it sends a token to `/secret`). */
function sendsToken(container: Container): boolean {
  return isWrapped(container) && (container.env ?? []).some((entry) => entry?.name === ENV.UID);
}

/**
 * Puts `item` where the first entry of its name is (or at the end) and drops any other entry of
 * that name: the kubelet would use the last duplicate.
 */
function upsertByName<T extends { name: string }>(list: T[], item: T): T[] {
  const index = list.findIndex((existing) => existing?.name === item.name);
  if (index === -1) return [...list, item];
  return list.flatMap((existing, at) =>
    at === index ? [item] : existing?.name === item.name ? [] : [existing]
  );
}

/**
 * {@link upsertByName} on a list that is the caller's own copy: changed in place, no second copy.
 * Anything but an array goes to {@link upsertByName} (which fails on it, as before).
 */
function upsertInto<T extends { name: string }>(list: T[], item: T): T[] {
  if (!Array.isArray(list)) return upsertByName(list, item);
  let write = 0;
  let placed = false;
  for (let read = 0; read < list.length; read++) {
    const existing = list[read]!;
    if (existing?.name !== item.name) list[write++] = existing;
    else if (!placed) {
      list[write++] = item;
      placed = true;
    }
  }
  list.length = write;
  if (!placed) list.push(item);
  return list;
}

/** The projected volume: one token with the audience and lifetime Piggy requires. */
export function tokenVolume(audience: string): Volume {
  return {
    name: TOKEN_VOLUME_NAME,
    projected: {
      // What the API server defaults it to (0644, as the default token's volume), so that
      // reinvoking the webhook on the stored pod changes nothing.
      defaultMode: 0o644,
      sources: [{
        serviceAccountToken: {
          audience,
          expirationSeconds: TOKEN_EXPIRATION_SECONDS,
          path: TOKEN_FILE_NAME,
        },
      }],
    },
  };
}

/**
 * Adds the token volume, and its read-only mount and `PIGGY_TOKEN_FILE` to every wrapped
 * proxy-mode container (init containers included). A volume, mount or variable of the same name
 * is replaced. Without such a container, the pod is returned unchanged.
 *
 * @param pod the mutated pod (not modified)
 * @param audience the token's audience
 */
export function withProjectedToken(pod: Pod, audience: string): Pod {
  if (!pod.spec) return pod;
  const wrapped = [...(pod.spec.initContainers ?? []), ...(pod.spec.containers ?? [])];
  if (!wrapped.some((container) => container && sendsToken(container))) return pod;
  // Copy-on-write: only the lists and containers written here are new objects.
  const copy = writablePod(pod);
  const spec = copy.spec!;
  const mount: VolumeMount = {
    name: TOKEN_VOLUME_NAME,
    mountPath: TOKEN_MOUNT_PATH,
    readOnly: true,
  };
  const file: EnvVar = { name: ENV.TOKEN_FILE, value: TOKEN_FILE };
  // The lists are the copies' own (`changeContainers`, `writablePod` copy them).
  changeContainers(spec, sendsToken, (container) => {
    container.volumeMounts = upsertInto(container.volumeMounts ?? [], mount);
    container.env = upsertInto(container.env ?? [], file);
  });
  spec.volumes = upsertInto(spec.volumes ?? [], tokenVolume(audience));
  return copy;
}
