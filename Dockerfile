# Fiktiv in a container. The data volume holds the key file and the embedded SQLite
# database; for PostgreSQL set FIKTIV_DATABASE_URL. Prefer FIKTIV_ROOT_KEY from a
# secret store over a key file on a volume that is backed up with the data.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p fiktiv --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /var/lib/fiktiv --shell /usr/sbin/nologin fiktiv \
    && mkdir -p /var/lib/fiktiv && chown fiktiv:fiktiv /var/lib/fiktiv && chmod 0700 /var/lib/fiktiv
COPY --from=build /src/target/release/fiktiv /usr/local/bin/fiktiv
USER fiktiv
VOLUME ["/var/lib/fiktiv"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/fiktiv"]
CMD ["serve", "--data-dir", "/var/lib/fiktiv", "--listen", "0.0.0.0:8080"]
