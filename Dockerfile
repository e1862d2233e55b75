# The promlake binary in a small image, for compose/ (not used by the tests:
# there is no Docker on the development machines).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p promlake

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/promlake /usr/local/bin/promlake
ENTRYPOINT []
CMD ["promlake", "serve", "--listen", "0.0.0.0:9464", "--data-dir", "/var/lib/promlake"]
