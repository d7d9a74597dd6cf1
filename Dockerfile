# ponte in a container: build with the Rust toolchain, run on a slim Debian.
#
#   docker build -t ponte .
#   docker run -p 8081:8081 -v ponte-data:/var/lib/ponte \
#       -e KAFKA_BROKERS=kafka-1:9092 ponte
#
# The outbox lives in the /var/lib/ponte volume: keep it on a durable disk.

FROM rust:1.89-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential pkg-config libssl-dev zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin ponte

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/ponte --shell /usr/sbin/nologin ponte \
    && mkdir -p /var/lib/ponte \
    && chown ponte:ponte /var/lib/ponte
COPY --from=build /src/target/release/ponte /usr/local/bin/ponte
USER ponte
WORKDIR /var/lib/ponte
VOLUME /var/lib/ponte
EXPOSE 8081
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/ponte"]
CMD ["serve"]
