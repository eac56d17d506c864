# PostgreSQL 15 and Redis 7 from Debian on the local base (docker/local/make-base.sh), for
# `make docker-check` when postgres:17-bookworm and redis:7-bookworm cannot be pulled. One
# image, two roles: `postgres` (trust auth on the check's private network) or `redis`.
ARG BASE=strokeaid/debian:bookworm
FROM ${BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      postgresql redis-server \
 && rm -rf /var/lib/apt/lists/*
COPY services-entrypoint.sh /usr/local/bin/services-entrypoint
ENTRYPOINT ["/bin/sh", "/usr/local/bin/services-entrypoint"]
CMD ["postgres"]
