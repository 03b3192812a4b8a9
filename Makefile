# datafix — `make run` for a demo on this machine, `make test` for the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum requirements.txt | cut -c1-12)

.PHONY: run test bench loadtest migrate demo worker simulator check clean

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

migrate: $(STAMP)
	mkdir -p var
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py load_demo

## Web + Celery worker (+ the LLM simulator unless OPENAI_BASE_URL is set), demo data loaded.
run: demo
	@bash scripts/run-dev.sh

## The test suite against whatever DATABASE_URL / REDIS_URL say (SQLite + embedded broker if unset).
## Installs Chromium + a CJK font for the browser tests when it can (root + apt-get); else they skip.
test: $(STAMP)
	@bash scripts/browser-deps.sh
	$(PY) -m pytest

## Benchmarks: print figures, assert nothing.
bench: $(STAMP)
	$(PY) -m bench

## 50 simulated reviewers against gunicorn + worker + PostgreSQL + Redis while a job runs; p50/p95, errors.
loadtest: $(STAMP)
	$(PY) loadtest/run.py

check: $(STAMP)
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

clean:
	rm -rf var .pytest_cache
