# syntax=docker/dockerfile:1
#
# One image per function: docker build --build-arg FUNCTION=poll-google -t …/poll-google:TAG .
# scripts/deploy.sh builds all of them (every crate under functions/ except local-runner).
#
# The build stage compiles only the chosen crate (release profile: size-optimised, LTO,
# stripped, panic=abort); the runtime stage is distroless with the C runtime and CA
# certificates only, running as a non-root user.
#
# No build argument per CRM: every function links every adapter of shared's `functions`
# feature (the registry, shared/src/adapters/registry.rs), and the kind is chosen at run time
# by CASESYNC_CRM__KIND, which Terraform sets from crm_kind. One image set serves Jira and
# Request Tracker deployments alike, and switching kinds needs no rebuild.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
ARG FUNCTION
# The binary's name when it differs from the crate's.
ARG BINARY=""
RUN test -n "$FUNCTION" || { echo "build with --build-arg FUNCTION=<crate under functions/>" >&2; exit 1; }
# cmake: for native crypto crates that build C code (aws-lc) when no prebuilt object fits.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The whole workspace: cargo needs every member's manifest to resolve it, even unbuilt ones.
COPY . .
# The caches keep the registry and build outputs between the seven builds of one deploy.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    set -eu; \
    cargo build --release --locked -p "$FUNCTION" --message-format=json-render-diagnostics > /tmp/build.json; \
    bins="$(sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' /tmp/build.json | sort -u)"; \
    want="${BINARY:-$FUNCTION}"; \
    bin="$(printf '%s\n' "$bins" | grep -E "/${want}\$" || true)"; \
    if [ -z "$bin" ] && [ "$(printf '%s\n' "$bins" | grep -c .)" = 1 ]; then bin="$bins"; fi; \
    if [ -z "$bin" ]; then echo "no binary '$want' among: $bins (set --build-arg BINARY=…)" >&2; exit 1; fi; \
    install -D -m 0755 "$bin" /out/function

FROM gcr.io/distroless/cc-debian12:nonroot
ARG FUNCTION
LABEL org.opencontainers.image.title="casesync ${FUNCTION}" \
      org.opencontainers.image.source="https://github.com/casesync/casesync" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/function /usr/local/bin/casesync-function
# Cloud Run sends requests to $PORT (8080 by default), which the HTTP shim reads.
ENV PORT=8080
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/casesync-function"]
