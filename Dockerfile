# syntax=docker/dockerfile:1.7
#
# Piggy images, one target each:
#   docker build --target piggy-webhooks -t ghcr.io/piggysec/piggy-webhooks:0.8.0 .
#   docker build --target piggy-env      -t ghcr.io/piggysec/piggy-env:0.8.0 .
#
# Deno is pinned to the version the project uses (package.json devDependencies.deno; a test checks
# it). When publishing, also pin the base images by digest: append @sha256:<digest> to each FROM.
# `deno compile` downloads its runtime (denort) from dl.deno.land; for an offline build pass a local
# one with --build-arg DENORT_BIN=<path inside the builder> (after copying it in).
#
# amd64 and arm64: `docker buildx build --platform linux/amd64,linux/arm64 …`. The builder runs on
# the target platform, so scripts/compile.ts builds for it and takes the launcher's loader and
# libraries from the builder's own /lib/<arch>-linux-gnu.

ARG DENO_VERSION=2.8.2
# deno-compiled binaries link glibc: distroless "cc" has it (and no shell); :nonroot is uid 65532.
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM denoland/deno:debian-${DENO_VERSION} AS builder
# Empty means download; scripts/compile.ts drops an empty DENORT_BIN.
ARG DENORT_BIN=""
# patchelf points the launcher at its own loader; unzip extracts the downloaded denort to patch it.
RUN apt-get update && apt-get install -y --no-install-recommends patchelf unzip \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first (cached layer): the import map and the lock file, which must be up to date;
# deno.lock also records package.json's dependencies (one of them the local scripts/npm-deno).
# --node-modules-dir=none: packages from deno.lock into Deno's cache (development uses npm's
# node_modules instead, nodeModulesDir "manual", which a build context does not have).
COPY deno.json deno.lock package.json ./
COPY scripts/npm-deno/ scripts/npm-deno/
COPY scripts/compile.ts scripts/bundle_launcher.ts scripts/launcher_tree.ts scripts/
COPY src/ src/
COPY cli/ cli/
RUN deno install --frozen --node-modules-dir=none --entrypoint cli/webhook.ts cli/piggy_env.ts \
    cli/standalone_source.ts
RUN deno task compile:webhook && deno task compile:env

# The launcher image: the install-piggy-env init container runs `piggy-env install /piggy`, which
# copies the self-contained launcher directory (/usr/local/lib/piggy-env: the binary patched to use
# /piggy/lib/ plus glibc's loader and libraries) into the shared volume, so wrapped containers need
# nothing from their image (scratch, distroless/static, Alpine). The volume hides /piggy here, so
# the image runs its own copy, linked against the base image's glibc. No shell needed.
FROM ${RUNTIME_IMAGE} AS piggy-env
LABEL org.opencontainers.image.title="piggy-env" \
      org.opencontainers.image.description="Piggy launcher: resolves piggy: references and execs the app" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder --chmod=0555 /src/bin/piggy-env /usr/local/bin/piggy-env
COPY --from=builder --chmod=0555 /src/bin/piggy-env-dist/ /usr/local/lib/piggy-env/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/piggy-env"]

# The webhook image (last stage: the default target).
FROM ${RUNTIME_IMAGE} AS piggy-webhooks
LABEL org.opencontainers.image.title="piggy-webhooks" \
      org.opencontainers.image.description="Piggy mutating admission webhook and secret proxy" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder --chmod=0555 /src/bin/piggy-webhooks /piggy-webhooks
USER 65532:65532
ENV LISTEN_ADDRESS=":8443"
EXPOSE 8443
ENTRYPOINT ["/piggy-webhooks"]
