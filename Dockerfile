# Multi-stage build: a release binary in a small non-root runtime image.
#   docker build -t customersim .
#   docker run --rm -e MQTT_HOST=broker customersim            # the default pipeline
#   docker run --rm customersim run --sink stdout --speed max --duration 1h
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin customersim

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /app customersim
WORKDIR /app
COPY --from=build /src/target/release/customersim /usr/local/bin/customersim
COPY configs/ /app/configs/
USER 10001
# the original service's HTTP port (http_ingress). The binary listens on loopback unless told
# otherwise; in a container the API must be reachable from outside it, so it is set here
# (add -e HTTP_TOKEN=... when the network is not trusted).
ENV HTTP_LISTEN=0.0.0.0:8000
EXPOSE 8000
ENTRYPOINT ["customersim"]
CMD ["run", "--config", "/app/configs/default.yaml"]
