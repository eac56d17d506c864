#!/bin/sh
# make docker-check: builds the image for real and runs the stack (PostgreSQL, Redis, web,
# worker) on a private Docker network, then checks /healthz, an upload and a prediction
# through the web container's REST API (docker/check_stack.py). Needs root and a running
# dockerd. Where Docker Hub cannot be reached (CHECK_LOCAL_BASES=1, the default), the base
# images come from docker/local/make-base.sh (Debian's mirror), and torch from the wheels on
# this machine's disk (PEP 503 "simple" index folders below WHEEL_ROOT), served to the build
# over the Docker bridge. Everything the check starts is removed at the end.
set -eu
cd "$(dirname "$0")/.."
IMAGE="${CHECK_IMAGE:-strokeaid:check}"
NET=strokeaid-check
PORT="${CHECK_PORT:-18000}"
LOCAL="${CHECK_LOCAL_BASES:-1}"
# Local PEP 503 indexes: WHEEL_ROOT is served read-only to the build, the two folders below it.
WHEEL_ROOT="${WHEEL_ROOT:-/opt}"
TORCH_WHEELS="${TORCH_WHEELS:-pypi-more/simple}"
DEPS_WHEELS="${DEPS_WHEELS:-pypi/simple}"
started=$(date +%s)
say() { echo "docker-check [$(( $(date +%s) - started )) s]: $*"; }

containers="strokeaid-check-db strokeaid-check-redis strokeaid-check-web strokeaid-check-worker"
server_pid=""
cleanup() {
  for c in $containers; do docker rm -f "$c" >/dev/null 2>&1 || true; done
  docker network rm "$NET" >/dev/null 2>&1 || true
  docker volume rm strokeaid-check-data >/dev/null 2>&1 || true
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
}
trap cleanup EXIT INT TERM
cleanup

set --  # the docker build arguments
services_image="${SERVICES_IMAGE:-strokeaid/services:bookworm}"
if [ "$LOCAL" = 1 ]; then
  say "local base images (Debian's mirror)"
  docker/local/make-base.sh
  set -- "$@" --build-arg PYTHON_IMAGE=strokeaid/debian:bookworm \
    --build-arg NODE_IMAGE=strokeaid/debian-node:bookworm
  if [ -d "$WHEEL_ROOT/$TORCH_WHEELS" ]; then
    # The wheel folders as indexes on the bridge address (containers reach the host there);
    # torch and the CUDA libraries come from the first, what they lack from PyPI.
    bridge=$(docker network inspect bridge --format '{{range .IPAM.Config}}{{.Gateway}}{{end}}')
    [ -n "$bridge" ] || bridge=$(ip -4 -o addr show docker0 | awk '{print $4}' | cut -d/ -f1)
    wheel_port="${WHEEL_PORT:-18765}"
    python3 -m http.server "$wheel_port" --bind "$bridge" --directory "$WHEEL_ROOT" >/dev/null 2>&1 &
    server_pid=$!
    sleep 1
    index="http://$bridge:$wheel_port"
    set -- "$@" --build-arg "TORCH_INDEX_URL=$index/$TORCH_WHEELS/" \
      --build-arg "TORCH_EXTRA_INDEX_URL=$index/$DEPS_WHEELS/ https://pypi.org/simple" \
      --build-arg TORCH_LOCAL_VERSION= --build-arg "PIP_TRUSTED_HOST=$bridge"
  fi
else
  services_image=""
fi

say "building $IMAGE"
DOCKER_BUILDKIT=0 docker build -q --force-rm "$@" -f docker/Dockerfile -t "$IMAGE" . >/dev/null
say "built: $(docker image inspect "$IMAGE" --format '{{.Size}}' | awk '{printf "%.1f GB", $1/1e9}')"

docker network create "$NET" >/dev/null
if [ -n "$services_image" ]; then
  docker run -d --name strokeaid-check-db --network "$NET" --network-alias db "$services_image" postgres >/dev/null
  docker run -d --name strokeaid-check-redis --network "$NET" --network-alias redis "$services_image" redis >/dev/null
  db_url=postgres://strokeaid@db:5432/strokeaid
else
  docker run -d --name strokeaid-check-db --network "$NET" --network-alias db \
    -e POSTGRES_USER=strokeaid -e POSTGRES_PASSWORD=check -e POSTGRES_DB=strokeaid postgres:17-bookworm >/dev/null
  docker run -d --name strokeaid-check-redis --network "$NET" --network-alias redis redis:7-bookworm >/dev/null
  db_url=postgres://strokeaid:check@db:5432/strokeaid
fi
env_file=$(mktemp)
cat > "$env_file" <<ENV
DATABASE_URL=$db_url
REDIS_URL=redis://redis:6379/0
SECRET_KEY=docker-check-$(date +%s)-not-a-secret
STROKEAID_UID_SECRET=docker-check-uid-secret
ALLOWED_HOSTS=localhost,127.0.0.1,web
CSRF_TRUSTED_ORIGINS=http://127.0.0.1:$PORT
SECURE_SSL_REDIRECT=false
SECURE_HSTS_SECONDS=0
ENV
say "waiting for PostgreSQL"
tries=0
until docker run --rm --network "$NET" --env-file "$env_file" "$IMAGE" \
    python -c "import os, psycopg; psycopg.connect(os.environ['DATABASE_URL']).close()" >/dev/null 2>&1; do
  tries=$((tries + 1)); [ "$tries" -lt 60 ] || { docker logs strokeaid-check-db; exit 1; }
  sleep 1
done
say "migrate, demo data and a small demo model (role: demo)"
docker run --rm --network "$NET" --env-file "$env_file" -v strokeaid-check-data:/data "$IMAGE" migrate
docker run --rm --network "$NET" --env-file "$env_file" -v strokeaid-check-data:/data "$IMAGE" \
  python manage.py demo_setup --cases 6 --shape 16 128 128
docker run -d --name strokeaid-check-web --network "$NET" --network-alias web --env-file "$env_file" \
  -v strokeaid-check-data:/data -p "127.0.0.1:$PORT:8000" "$IMAGE" web >/dev/null
docker run -d --name strokeaid-check-worker --network "$NET" --env-file "$env_file" \
  -v strokeaid-check-data:/data "$IMAGE" worker >/dev/null
say "checking the stack through the web container"
if docker exec strokeaid-check-web python docker/check_stack.py http://127.0.0.1:8000; then
  say "passed"
  status=0
else
  docker logs --tail 50 strokeaid-check-web; docker logs --tail 50 strokeaid-check-worker
  say "FAILED"
  status=1
fi
rm -f "$env_file"
exit "$status"
