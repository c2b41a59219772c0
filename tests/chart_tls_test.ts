/**
 * Chart certificate tests with the real helm: the generated CA and certificate (names, chain,
 * validity, a real TLS handshake), their reuse across upgrades through `lookup` (against a fake API
 * server with `--dry-run=server`), provided certificates, and cert-manager.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { rmSync } from "node:fs";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { createServer } from "node:https";
import { connect } from "node:tls";
import { createTestCa } from "../testing/pki.ts";
import {
  dig,
  findObject,
  helmTemplate,
  type K8sObject,
  ownedByRelease,
  renderChart,
  startFakeCluster,
} from "./_chart.ts";

const NAME = "piggy-piggy-webhooks";
const NS = "piggy-system";
const TLS_SECRET = "piggy-piggy-webhooks-webhook-tls";
const SERVICE_HOST = `${NAME}.${NS}.svc`;

interface Tls {
  crt: string;
  key: string;
  ca: string;
}

function secretTls(objects: K8sObject[]): Tls {
  const data = dig(findObject(objects, "Secret", TLS_SECRET), "data") as Record<string, string>;
  const decode = (key: string) => Buffer.from(data[key] ?? "", "base64").toString();
  return { crt: decode("tls.crt"), key: decode("tls.key"), ca: decode("ca.crt") };
}

function caBundle(objects: K8sObject[]): string | undefined {
  const bundle = dig(
    findObject(objects, "MutatingWebhookConfiguration"),
    "webhooks",
    0,
    "clientConfig",
    "caBundle",
  );
  return bundle === undefined ? undefined : Buffer.from(bundle as string, "base64").toString();
}

function tlsChecksum(objects: K8sObject[]): unknown {
  return dig(
    findObject(objects, "Deployment"),
    "spec",
    "template",
    "metadata",
    "annotations",
    "checksum/tls",
  );
}

const DAY_MS = 24 * 60 * 60 * 1000;

function validityDays(cert: X509Certificate): number {
  return Math.round((Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / DAY_MS);
}

test("the generated certificate names the service and is signed by the published CA", async () => {
  const objects = await renderChart({ values: { mutate: { certificate: { certValidity: 30 } } } });
  const tls = secretTls(objects);
  const cert = new X509Certificate(tls.crt);
  const ca = new X509Certificate(tls.ca);
  assert.equal(
    cert.subjectAltName,
    `DNS:${NAME}, DNS:${NAME}.${NS}, DNS:${SERVICE_HOST}, DNS:${SERVICE_HOST}.cluster.local`,
  );
  assert.ok(cert.checkIssued(ca));
  assert.ok(cert.verify(ca.publicKey));
  assert.ok(ca.ca);
  // ECDSA P-256 keys, not Helm's default RSA-2048: a cheaper handshake for the webhook.
  for (const key of [cert.publicKey, ca.publicKey, createPrivateKey(tls.key)]) {
    assert.equal(key.asymmetricKeyType, "ec");
    assert.equal(key.asymmetricKeyDetails?.namedCurve, "prime256v1");
  }
  assert.ok(cert.checkPrivateKey(createPrivateKey(tls.key)));
  assert.ok(cert.checkPrivateKey(createPrivateKey(tls.key)));
  assert.equal(validityDays(cert), 30);
  assert.equal(validityDays(ca), 300);
  assert.equal(findObject(objects, "Secret", TLS_SECRET).type, "kubernetes.io/tls");
  assert.equal(caBundle(objects), tls.ca);
});

test("the generated certificate serves TLS that a client verifies with the CA", async () => {
  const tls = secretTls(await renderChart());
  const server = createServer({ cert: tls.crt, key: tls.key }, (_req, res) => res.end("ok"));
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  try {
    const { port } = server.address() as { port: number };
    const authorized = await new Promise<boolean>((done, fail) => {
      const socket = connect(
        { host: "127.0.0.1", port, servername: SERVICE_HOST, ca: tls.ca },
        () => {
          done(socket.authorized);
          socket.end();
        },
      );
      socket.on("error", fail);
    });
    assert.equal(authorized, true);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((done) => server.close(() => done()));
  }
});

test("without a cluster every render generates a new CA (helm template cannot look up)", async () => {
  assert.notEqual(secretTls(await renderChart()).ca, secretTls(await renderChart()).ca);
});

test("an upgrade keeps the CA and certificate of the existing Secret", async () => {
  const first = await renderChart();
  const existing = ownedByRelease(findObject(first, "Secret", TLS_SECRET), "piggy", NS);
  const cluster = await startFakeCluster({ objects: [existing] });
  try {
    const options = {
      env: { KUBECONFIG: cluster.kubeconfig },
      args: ["--dry-run=server", "--disable-openapi-validation"],
    };
    const again = await renderChart(options);
    assert.ok(
      cluster.requests.includes(`GET /api/v1/namespaces/${NS}/secrets/${NAME}-webhook-tls`),
    );
    assert.deepEqual(secretTls(again), secretTls(first));
    assert.equal(caBundle(again), secretTls(first).ca);
    assert.equal(
      dig(findObject(again, "ConfigMap"), "data", "ca.crt"),
      secretTls(first).ca.trimEnd() + "\n",
    );
    assert.equal(tlsChecksum(again), tlsChecksum(first));
    assert.equal(
      dig(
        findObject(again, "Secret", TLS_SECRET),
        "metadata",
        "annotations",
        "piggysec.com/certificate-source",
      ),
      "existing-secret",
    );
    assert.deepEqual(secretTls(await renderChart(options)), secretTls(first));
  } finally {
    await cluster.close();
  }
});

test("an upgrade keeps an RSA pair generated by an earlier chart", async () => {
  const ca = createTestCa("chart-rsa");
  try {
    const leaf = ca.issue("webhook", { serverNames: [SERVICE_HOST], keyType: "rsa" });
    const secret = ownedByRelease(
      findObject(await renderChart(), "Secret", TLS_SECRET),
      "piggy",
      NS,
    );
    const b64 = (text: string) => Buffer.from(text).toString("base64");
    secret.data = { "tls.crt": b64(leaf.cert), "tls.key": b64(leaf.key), "ca.crt": b64(ca.cert) };
    const cluster = await startFakeCluster({ objects: [secret] });
    try {
      const objects = await renderChart({
        env: { KUBECONFIG: cluster.kubeconfig },
        args: ["--dry-run=server", "--disable-openapi-validation"],
      });
      assert.deepEqual(secretTls(objects), { crt: leaf.cert, key: leaf.key, ca: ca.cert });
      assert.equal(createPrivateKey(secretTls(objects).key).asymmetricKeyType, "rsa");
      assert.equal(caBundle(objects), ca.cert);
    } finally {
      await cluster.close();
    }
  } finally {
    rmSync(ca.dir, { recursive: true, force: true });
  }
});

test("an upgrade from Go Piggy keeps its Opaque Secret type, which cannot change", async () => {
  const goSecret = ownedByRelease(
    findObject(await renderChart(), "Secret", TLS_SECRET),
    "piggy",
    NS,
  );
  goSecret.type = "Opaque";
  const cluster = await startFakeCluster({ objects: [goSecret] });
  try {
    const objects = await renderChart({
      env: { KUBECONFIG: cluster.kubeconfig },
      args: ["--dry-run=server", "--disable-openapi-validation"],
    });
    assert.equal(findObject(objects, "Secret", TLS_SECRET).type, "Opaque");
  } finally {
    await cluster.close();
  }
});

test("a Secret without ca.crt is replaced by a new pair", async () => {
  const partial = ownedByRelease(
    findObject(await renderChart(), "Secret", TLS_SECRET),
    "piggy",
    NS,
  );
  delete (partial.data as Record<string, string>)["ca.crt"];
  const cluster = await startFakeCluster({ objects: [partial] });
  try {
    const objects = await renderChart({
      env: { KUBECONFIG: cluster.kubeconfig },
      args: ["--dry-run=server", "--disable-openapi-validation"],
    });
    const tls = secretTls(objects);
    assert.notEqual(
      tls.crt,
      Buffer.from((partial.data as Record<string, string>)["tls.crt"] ?? "", "base64").toString(),
    );
    assert.ok(new X509Certificate(tls.crt).checkIssued(new X509Certificate(tls.ca)));
  } finally {
    await cluster.close();
  }
});

test("provided certificates (base64 as in Go Piggy, or PEM) are used as given", async () => {
  const ca = createTestCa("chart");
  const leaf = ca.issue("webhook", { serverNames: [SERVICE_HOST] });
  const b64 = (text: string) => Buffer.from(text).toString("base64");
  for (const encode of [b64, (text: string) => text]) {
    const objects = await renderChart({
      values: {
        mutate: {
          certificate: {
            generate: false,
            tls: { crt: encode(leaf.cert), key: encode(leaf.key) },
            ca: { crt: encode(ca.cert) },
          },
        },
      },
    });
    const tls = secretTls(objects);
    assert.equal(tls.crt.trim(), leaf.cert.trim());
    assert.equal(tls.key.trim(), leaf.key.trim());
    assert.equal(tls.ca.trim(), ca.cert.trim());
    assert.equal(caBundle(objects)?.trim(), ca.cert.trim());
    assert.equal(
      (dig(findObject(objects, "ConfigMap"), "data", "ca.crt") as string).trim(),
      ca.cert.trim(),
    );
  }
});

test("missing provided certificates fail the render with the value to set", async () => {
  const result = await helmTemplate({ values: { mutate: { certificate: { generate: false } } } });
  assert.notEqual(result.status, 0);
  assert.match(
    result.stderr,
    /mutate\.certificate\.tls\.crt is required when mutate\.certificate\.generate/,
  );
});

test("cert-manager issues the serving certificate and injects the CA", async () => {
  const objects = await renderChart({
    values: { mutate: { certificate: { certManager: { enabled: true }, certValidity: 60 } } },
  });
  // Only the seal key's Secret: no certificate Secret and no CA ConfigMap.
  assert.deepEqual(
    objects.filter((o) => o.kind === "Secret" || o.kind === "ConfigMap").map((o) =>
      o.metadata.name
    ),
    [`${NAME}-seal`],
  );
  const hook = findObject(objects, "MutatingWebhookConfiguration");
  assert.equal(
    dig(hook, "metadata", "annotations", "cert-manager.io/inject-ca-from"),
    `${NS}/${NAME}-webhook-tls`,
  );
  assert.equal(caBundle(objects), undefined);

  const serving = findObject(objects, "Certificate", `${NAME}-webhook-tls`);
  assert.equal(dig(serving, "spec", "secretName"), `${NAME}-webhook-tls`);
  assert.equal(dig(serving, "spec", "duration"), "1440h");
  assert.deepEqual(dig(serving, "spec", "dnsNames"), [
    NAME,
    `${NAME}.${NS}`,
    SERVICE_HOST,
    `${SERVICE_HOST}.cluster.local`,
  ]);
  assert.deepEqual(dig(serving, "spec", "issuerRef"), {
    group: "cert-manager.io",
    kind: "Issuer",
    name: `${NAME}-ca`,
  });
  const ca = findObject(objects, "Certificate", `${NAME}-ca`);
  assert.equal(dig(ca, "spec", "isCA"), true);
  assert.equal(dig(ca, "spec", "duration"), "14400h");
  assert.equal(
    dig(findObject(objects, "Issuer", `${NAME}-ca`), "spec", "ca", "secretName"),
    `${NAME}-ca`,
  );
  assert.deepEqual(dig(findObject(objects, "Issuer", `${NAME}-selfsign`), "spec"), {
    selfSigned: {},
  });
  assert.deepEqual(dig(ca, "spec", "issuerRef", "name"), `${NAME}-selfsign`);

  const volumes = dig(findObject(objects, "Deployment"), "spec", "template", "spec", "volumes");
  assert.equal(dig(volumes, 0, "secret", "secretName"), `${NAME}-webhook-tls`);
  assert.match(tlsChecksum(objects) as string, /^[0-9a-f]{64}$/);
  const pod = findObject(objects, "Pod");
  assert.equal(dig(pod, "spec", "volumes", 0, "secret", "secretName"), `${NAME}-webhook-tls`);
});
