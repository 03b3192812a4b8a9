#!/usr/bin/env bash
# Starts everything `make run` promises in one terminal; Ctrl-C stops all of it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PORT=${PORT:-8000}
SIM_PORT=${SIM_PORT:-8765}
trap 'kill 0' EXIT INT TERM

if [ -z "${OPENAI_BASE_URL:-}" ]; then
  export OPENAI_BASE_URL="http://127.0.0.1:${SIM_PORT}/v1"
  $PY manage.py llm_simulator --port "$SIM_PORT" &
  echo "LLM simulator:  $OPENAI_BASE_URL"
fi
.venv/bin/celery -A config worker -l info -Q default,classification,generation,extraction,dpo --concurrency 2 &
echo
echo "datafix is starting on  http://127.0.0.1:${PORT}/"
echo "Demo logins are printed above by load_demo (admin / reviewer1 … reviewer5)."
echo
$PY manage.py runserver "127.0.0.1:${PORT}"
