# Node.js and npm from Debian on the local base (docker/local/make-base.sh): the image
# Dockerfile's NODE_IMAGE when node:22-bookworm-slim cannot be pulled.
ARG BASE=strokeaid/debian:bookworm
FROM ${BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
CMD ["node"]
