# syntax=docker/dockerfile:1
# The prism-operator image: the release binary on a distroless base, run as a non-root user.
#
#   docker build -t ghcr.io/prism/prism-operator:0.1.0 .
#
# The build command is the release build CI runs (cargo build --release --locked -p prism-operator).
# Neither the sandbox (the prism-sandbox binary, behind the off-by-default `sandbox` feature) nor
# the API emulator and the tests (dev-dependencies) are built into it.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# The whole workspace: cargo reads every member's manifest even when building one package.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p prism-operator \
    && install -D -m 0755 target/release/prism-operator /out/prism-operator \
    && strip /out/prism-operator

# glibc and libgcc for the Rust binary (TLS is rustls with ring: no OpenSSL), CA certificates,
# no shell, no package manager. The nonroot tag runs as uid/gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/prism-operator /usr/local/bin/prism-operator
USER 65532:65532
# /metrics and /healthz, /readyz (the chart's metrics.port and healthPort).
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/prism-operator"]
CMD ["run"]
