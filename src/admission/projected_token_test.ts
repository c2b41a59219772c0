import { test } from "node:test";
import assert from "node:assert/strict";
import type { Pod } from "kubernetes-types/core/v1.d.ts";
import { ENV, TOKEN_MOUNT_PATH, TOKEN_VOLUME_NAME } from "../constants.ts";
import { TOKEN_EXPIRATION_SECONDS, tokenVolume, withProjectedToken } from "./projected_token.ts";

function pod(): Pod {
  const wrapped = (name: string, uid?: string) => ({
    name,
    image: `${name}:1`,
    command: ["/piggy/piggy-env"],
    args: ["--", `/${name}`],
    env: uid === undefined ? [{ name: ENV.STANDALONE, value: "true" }] : [{
      name: ENV.UID,
      value: uid,
    }],
  });
  return {
    spec: {
      initContainers: [
        { name: "install-piggy-env", image: "piggy-env:1" },
        wrapped("migrate", "u2"),
      ],
      containers: [wrapped("app", "u1"), { name: "sidecar", image: "proxy:1" }, wrapped("batch")],
      volumes: [{ name: "piggy-env", emptyDir: {} }],
    },
  };
}

test("withProjectedToken() mounts the token read-only only into wrapped proxy-mode containers", () => {
  const input = pod();
  const out = withProjectedToken(input, "piggy.example");
  const mounted = [...out.spec!.initContainers!, ...out.spec!.containers].filter((container) =>
    container.volumeMounts?.some((mount) => mount.name === TOKEN_VOLUME_NAME)
  ).map((container) => container.name);
  assert.deepEqual(mounted, ["migrate", "app"]);
  const app = out.spec!.containers[0]!;
  assert.deepEqual(app.volumeMounts, [
    { name: TOKEN_VOLUME_NAME, mountPath: TOKEN_MOUNT_PATH, readOnly: true },
  ]);
  assert.deepEqual(app.env?.find((entry) => entry.name === ENV.TOKEN_FILE), {
    name: ENV.TOKEN_FILE,
    value: `${TOKEN_MOUNT_PATH}/token`,
  });
  assert.equal(out.spec!.containers[2]!.env?.some((e) => e.name === ENV.TOKEN_FILE), false);
  assert.deepEqual(out.spec!.volumes, [
    { name: "piggy-env", emptyDir: {} },
    {
      name: TOKEN_VOLUME_NAME,
      projected: {
        defaultMode: 0o644,
        sources: [{
          serviceAccountToken: {
            audience: "piggy.example",
            expirationSeconds: TOKEN_EXPIRATION_SECONDS,
            path: "token",
          },
        }],
      },
    },
  ]);
  assert.equal(TOKEN_EXPIRATION_SECONDS, 600);
  assert.deepEqual(input, pod(), "the input is not modified");
});

test("withProjectedToken() is idempotent and replaces a look-alike volume, mount or variable", () => {
  const once = withProjectedToken(pod(), "piggysec.com");
  assert.deepEqual(withProjectedToken(once, "piggysec.com"), once);
  const forged = structuredClone(once);
  forged.spec!.volumes![1] = { name: TOKEN_VOLUME_NAME, secret: { secretName: "stolen" } };
  forged.spec!.containers[0]!.volumeMounts = [
    { name: TOKEN_VOLUME_NAME, mountPath: "/elsewhere" },
  ];
  forged.spec!.containers[0]!.env!.push({ name: ENV.TOKEN_FILE, value: "/elsewhere/token" });
  assert.deepEqual(withProjectedToken(forged, "piggysec.com"), once);
  assert.deepEqual(tokenVolume("a").projected?.sources?.[0]?.serviceAccountToken?.audience, "a");
});

test("withProjectedToken() leaves a pod without a proxy-mode launcher alone", () => {
  const standalone: Pod = { spec: { containers: [pod().spec!.containers[2]!] } };
  assert.deepEqual(withProjectedToken(standalone, "piggysec.com"), standalone);
});

test("withProjectedToken() changes nothing of a deep-frozen input; duplicates go, first place kept", () => {
  const freeze = <T>(value: T): T => {
    if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
      Object.freeze(value);
      for (const item of Object.values(value)) freeze(item);
    }
    return value;
  };
  const input = pod();
  const app = input.spec!.containers[0]!;
  app.env = [
    { name: ENV.TOKEN_FILE, value: "/first" },
    ...app.env!,
    { name: ENV.TOKEN_FILE, value: "/second" },
  ];
  app.volumeMounts = [
    { name: "data", mountPath: "/data" },
    { name: TOKEN_VOLUME_NAME, mountPath: "/a" },
    { name: TOKEN_VOLUME_NAME, mountPath: "/b" },
  ];
  const copy = structuredClone(input);
  const out = withProjectedToken(freeze(input), "piggysec.com");
  assert.deepEqual(input, copy);
  assert.deepEqual(out.spec!.containers[0]!.env!.map((entry) => entry.name), [
    ENV.TOKEN_FILE,
    ENV.UID,
  ]);
  assert.equal(out.spec!.containers[0]!.env![0]!.value, `${TOKEN_MOUNT_PATH}/token`);
  assert.deepEqual(out.spec!.containers[0]!.volumeMounts, [
    { name: "data", mountPath: "/data" },
    { name: TOKEN_VOLUME_NAME, mountPath: TOKEN_MOUNT_PATH, readOnly: true },
  ]);
});
