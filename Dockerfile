# Multi-stage build of esignsp: a static-ish release binary on a small Debian runtime,
# running as a non-root user.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin esignsp

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/esignsp --shell /usr/sbin/nologin esignsp \
    && mkdir -p /var/lib/esignsp && chown esignsp:esignsp /var/lib/esignsp
COPY --from=build /src/target/release/esignsp /usr/local/bin/esignsp
USER esignsp
WORKDIR /var/lib/esignsp
# The embedded database and development key, when no database or keys are configured.
ENV ESIGNSP__SERVER__HOST=0.0.0.0 ESIGNSP__SERVER__DATA_DIR=/var/lib/esignsp
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/esignsp"]
CMD ["serve"]
