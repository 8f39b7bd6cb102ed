# Image of the model-registry server: one static binary on distroless, no shell, non-root.
#
#   docker build -t model-registry .
#   docker run -p 8080:8080 -v mr-data:/data model-registry
#
# Build stage: the same toolchain as the project's machines (Debian 12, Rust 1.95). The binary is
# linked statically against glibc (crt-static): SQLite is compiled in by sqlx and TLS is rustls,
# so nothing else is needed at run time, and glibc keeps its allocator (musl's is much slower
# under the server's many threads). `--target` is explicit so that crt-static applies to the
# binary only, not to build scripts and proc macros; `uname -m` lets arm64 hosts build natively.
FROM rust:1.95.0-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the crate registry and the compiled dependencies between builds; the binary
# is copied out of the cached target dir in the same step, since the mount is gone afterwards.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    target="$(uname -m)-unknown-linux-gnu" \
    && RUSTFLAGS="-C target-feature=+crt-static" \
       cargo build --release --locked -p model-registry --target "$target" \
    && install -D -m 0555 "target/$target/release/model-registry" /out/model-registry \
    && install -d -m 0700 /out/data

# Run stage: distroless "static" holds /etc/passwd (user nonroot, 65532), CA certificates and
# tzdata, and nothing that could run a shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/model-registry /usr/local/bin/model-registry
# The server writes its SQLite file (model-registry.db, with -wal/-shm beside it) in its working
# directory by default: /data, owned by the run user, a volume so the data outlives the container.
COPY --from=build --chown=65532:65532 /out/data /data
WORKDIR /data
VOLUME ["/data"]
# Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/model-registry"]
# Arguments only: `docker run model-registry migrate status` runs the migration tool instead.
CMD ["proxy", "--hostname", "0.0.0.0", "--port", "8080"]
