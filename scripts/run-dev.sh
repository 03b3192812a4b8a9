#!/usr/bin/env bash
# Starts everything `make run` promises in one terminal; Ctrl-C stops all of it:
# the LLM simulator (unless OPENAI_BASE_URL points at a real provider), a Celery worker on every
# job queue, and the web server.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PORT=${PORT:-8000}
SIM_PORT=${SIM_PORT:-8765}
# Each program runs in its own process group (set -m), so a terminal's Ctrl-C reaches only this
# script, which sends each program one TERM (each stops its own children: the worker its pool, the
# runserver reloader its server), gives them 20 s (a worker finishes its task or is cut off, which
# jobs survive), then KILLs whatever is left in their groups. The shell ignores the signals
# meanwhile: a plain `trap 'kill 0' …` re-triggers itself, TERM after TERM.
set -m
stop_all() {
  trap '' INT TERM
  trap - EXIT
  local groups
  groups=$(jobs -p)
  for group in $groups; do kill -TERM "$group" 2>/dev/null || true; done
  for _ in $(seq 1 40); do
    [ -z "$(jobs -pr)" ] && break
    sleep 0.5
  done
  for group in $groups; do kill -KILL -- "-$group" 2>/dev/null || true; done
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
