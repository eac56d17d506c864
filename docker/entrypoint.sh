#!/bin/sh
# Container entry point: one image, several roles. tini (PID 1) runs this script, and every role
# ends in `exec`, so the long-running process receives SIGTERM from tini directly.
#   web                  uvicorn: HTTP and websockets (ASGI strokeaid_site.asgi:application)
#   worker               django-q2 cluster for the "default" queue (ingestion, prediction, export)
#   training-worker      django-q2 cluster for the "training" queue; first marks training runs
#                        left "running" by a killed worker as "interrupted"
#   migrate              apply database migrations (one-shot job)
#   wait-for-migrations  block until the database schema is current (init container)
#   demo                 load the demo data (one-shot)
#   bot                  the Stroke AID Telegram bot (a client of the web service's REST API)
#   dicom-listener       the DICOM gateway's C-STORE receiver (port STROKEAID_DICOM_PORT)
#   anything else        run as a command, e.g. `python manage.py createsuperuser`
set -eu

# The command that marks stale training runs interrupted (inference/management/commands).
TRAINING_REAP_COMMAND="${TRAINING_REAP_COMMAND:-reap_jobs}"

# A worker killed after its grace period leaves its job "running"; the reap marks jobs whose
# heartbeat stopped "interrupted" (visible to users, restartable) before taking new work. Live
# jobs of other replicas keep beating and are left alone.
reap_stale_jobs() {
  python manage.py "$TRAINING_REAP_COMMAND" \
    || echo "entrypoint: '$TRAINING_REAP_COMMAND' failed; starting the worker anyway" >&2
}

role="${1:-web}"
case "$role" in
  web)
    shift || true
    # uvicorn streams bodies to the app (oversized ones are refused before they are read, see
    # strokeaid_site/bodylimit.py and strokeaid_site/server.py). --proxy-headers: client address
    # and scheme from the Ingress / reverse proxy at FORWARDED_ALLOW_IPS.
    exec uvicorn strokeaid_site.asgi:application --host 0.0.0.0 --port "${PORT:-8000}" \
      --lifespan off --ws websockets-sansio --http httptools --loop uvloop --no-access-log \
      --proxy-headers --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-*}" "$@"
    ;;
  worker)
    reap_stale_jobs
    exec python manage.py qcluster
    ;;
  training-worker)
    export Q_CLUSTER_NAME=training
    reap_stale_jobs
    exec python manage.py qcluster
    ;;
  migrate)
    exec python manage.py migrate --no-input
    ;;
  bot)
    shift || true
    exec python manage.py telegram_bot "$@"
    ;;
  dicom-listener)
    shift || true
    exec python manage.py dicom_listener "$@"
    ;;
  wait-for-migrations)
    # `migrate --check` exits non-zero while migrations are unapplied (or the DB is down).
    tries="${MIGRATION_WAIT_TRIES:-120}"
    i=0
    until python manage.py migrate --check >/dev/null 2>&1; do
      i=$((i + 1))
      if [ "$i" -ge "$tries" ]; then
        echo "entrypoint: database schema still not current after $tries tries" >&2
        exit 1
      fi
      sleep 5
    done
    ;;
  demo)
    exec python manage.py demo_setup
    ;;
  *)
    exec "$@"
    ;;
esac
