# datafix — `make run` for a demo on this machine, `make test` for the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum requirements.txt | cut -c1-12)

.PHONY: run test bench loadtest migrate demo worker simulator check clean compat

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

## Every export loaded by LLaMA-Factory and TRL in their own virtualenv (large install; not part of `make test`).
COMPAT_VENV := var/compat-venv
COMPAT_WORK := var/compat/work
COMPAT_STAMP := $(COMPAT_VENV)/.installed-$(shell cat compat/requirements.txt compat/requirements-nodeps.txt | sha1sum | cut -c1-12)

$(COMPAT_STAMP): compat/requirements.txt compat/requirements-nodeps.txt
	$(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/pip install --quiet --upgrade pip
	$(COMPAT_VENV)/bin/pip install --quiet torch==2.13.0
	$(COMPAT_VENV)/bin/pip install --quiet -r compat/requirements.txt
	$(COMPAT_VENV)/bin/pip install --quiet --no-deps -r compat/requirements-nodeps.txt
	rm -f $(COMPAT_VENV)/.installed-*
	touch $@

compat: $(STAMP) $(COMPAT_STAMP)
	rm -rf $(COMPAT_WORK)
	$(PY) compat/make_exports.py $(COMPAT_WORK)
	$(COMPAT_VENV)/bin/python compat/run.py $(COMPAT_WORK)

check: $(STAMP)
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

clean:
	rm -rf var .pytest_cache

## `make compat`'s LiteLLM proxy (compat/check_providers.py runs every job kind through it), in its own virtualenv.
COMPAT_LITELLM_VENV := var/compat-litellm
COMPAT_LITELLM_STAMP := $(COMPAT_LITELLM_VENV)/.installed-$(shell sha1sum compat/requirements-litellm.txt | cut -c1-12)

$(COMPAT_LITELLM_STAMP): compat/requirements-litellm.txt
	$(PYTHON) -m venv $(COMPAT_LITELLM_VENV)
	$(COMPAT_LITELLM_VENV)/bin/pip install --quiet --upgrade pip
	$(COMPAT_LITELLM_VENV)/bin/pip install --quiet -r compat/requirements-litellm.txt
	rm -f $(COMPAT_LITELLM_VENV)/.installed-*
	touch $@

compat: $(STAMP) $(COMPAT_LITELLM_STAMP)
