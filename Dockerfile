# Multi-stage build of esignsp: a static-ish release binary on a small Debian runtime,
# running as a non-root user.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin esignsp

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin esignsp
COPY --from=build /src/target/release/esignsp /usr/local/bin/esignsp
USER esignsp
ENV ESIGNSP__SERVER__HOST=0.0.0.0
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/esignsp"]
CMD ["serve"]
