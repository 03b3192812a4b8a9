#!/usr/bin/env bash
# Starts everything `make run` promises in one terminal; Ctrl-C stops all of it:
# the LLM simulator (unless OPENAI_BASE_URL points at a real provider), a Celery worker on every
# job queue, and the web server.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PORT=${PORT:-8000}
SIM_PORT=${SIM_PORT:-8765}
# On Ctrl-C, TERM or exit: one TERM to each program started here, a few seconds to stop, then
# TERM to whatever is left in our process group (the runserver reloader's child). The shell ignores
# the signals meanwhile: a plain `trap 'kill 0' …` re-triggers itself, TERM after TERM.
stop_all() {
  trap '' INT TERM
  trap - EXIT
  kill -TERM $(jobs -p) 2>/dev/null || true
  for _ in $(seq 1 20); do
    [ -z "$(jobs -pr)" ] && break
    sleep 0.5
  done
  kill -TERM 0 2>/dev/null || true
  wait
}
trap stop_all EXIT INT TERM

if [ -z "${OPENAI_BASE_URL:-}" ]; then
  export OPENAI_BASE_URL="http://127.0.0.1:${SIM_PORT}/v1"
  $PY manage.py llm_simulator --port "$SIM_PORT" --latency-ms "${SIM_LATENCY_MS:-300}" &
  echo "LLM simulator:  $OPENAI_BASE_URL"
else
  echo "LLM provider:   $OPENAI_BASE_URL"
fi
.venv/bin/celery -A config worker -l info -Q default,classification,generation,extraction,dpo \
  --concurrency "${WORKER_CONCURRENCY:-2}" &
echo
echo "datafix is starting on  http://127.0.0.1:${PORT}/"
echo "Demo logins are printed above by load_demo (admin / reviewer1 … reviewer5)."
echo "Jobs: http://127.0.0.1:${PORT}/jobs/   queue monitor: http://127.0.0.1:${PORT}/jobs/monitor/"
echo
$PY manage.py runserver "127.0.0.1:${PORT}" &
wait -n  # the first of them to stop (or a signal) ends the session
