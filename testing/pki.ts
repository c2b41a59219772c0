/**
 * Development and test PKI: a CA plus leaf certificates made with the real `openssl` binary, in a
 * temp directory. Used by `deno task start` (dev certificate), the HTTPS stand-ins and the tests.
 *
 * @module
 */

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A PEM certificate with its key and the paths they were written to. */
export interface CertPair {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
}

/** A CA able to sign further leaves. */
export interface TestCa extends CertPair {
  dir: string;
  /**
   * Issues a leaf. `serverNames` become SANs (IPs as IP:, names as DNS:); the key is EC P-256
   * unless `keyType` is `rsa` (RSA-2048, Helm's default and common for certificates of one's own).
   */
  issue(
    name: string,
    options?: { serverNames?: string[]; clientAuth?: boolean; cn?: string; keyType?: "ec" | "rsa" },
  ): CertPair;
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

function isIp(name: string): boolean {
  return /^[0-9.]+$/.test(name) || name.includes(":");
}

/**
 * Creates a new CA in a fresh temp directory (EC P-256, 1 day).
 *
 * @param label common-name prefix, to tell CAs apart in errors
 */
export function createTestCa(label = "piggy-test"): TestCa {
  const dir = mkdtempSync(join(tmpdir(), `${label}-pki-`));
  openssl([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    "1",
    "-subj",
    `/CN=${label} CA`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ], dir);
  const read = (file: string) => readFileSync(join(dir, file), "utf8");
  const issue: TestCa["issue"] = (name, options = {}) => {
    const serverNames = options.serverNames ??
      (options.clientAuth ? [] : ["localhost", "127.0.0.1", "::1"]);
    const ext = [
      "basicConstraints=CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      `extendedKeyUsage=${options.clientAuth ? "clientAuth" : "serverAuth"}`,
    ];
    if (serverNames.length > 0) {
      ext.push(
        `subjectAltName=${serverNames.map((n) => (isIp(n) ? `IP:${n}` : `DNS:${n}`)).join(",")}`,
      );
    }
    writeFileSync(join(dir, `${name}.ext`), ext.join("\n") + "\n");
    openssl([
      "req",
      "-newkey",
      ...(options.keyType === "rsa" ? ["rsa:2048"] : ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
      "-nodes",
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      `/CN=${options.cn ?? name}`,
    ], dir);
    openssl([
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.crt`,
      "-days",
      "1",
      "-extfile",
      `${name}.ext`,
    ], dir);
    return {
      cert: read(`${name}.crt`),
      key: read(`${name}.key`),
      certFile: join(dir, `${name}.crt`),
      keyFile: join(dir, `${name}.key`),
    };
  };
  return {
    dir,
    cert: read("ca.crt"),
    key: read("ca.key"),
    certFile: join(dir, "ca.crt"),
    keyFile: join(dir, "ca.key"),
    issue,
  };
}
