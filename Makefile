# The few verbs people type. `make run` and `make test` are the README's two set-up commands.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)

.PHONY: run test unit ft style staging-rehearsal scale-out-rehearsal reliability bench browser ci

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Superlists needs Python 3.11 or newer" or 0)'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $@

## run: the site on http://localhost:8000 with SQLite; login emails print to this console
run: $(STAMP)
	$(PY) manage.py migrate
	$(PY) manage.py runserver

## test: style, unit tests and functional tests in headless Chromium (local live server)
test: $(STAMP) browser
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(PY) manage.py test

## unit: unit tests only, in seconds
unit: $(STAMP)
	$(PY) manage.py test --exclude-tag=ft

## ft: functional tests only (set STAGING_SERVER=host to run them against a server)
ft: $(STAMP) browser
	$(PY) manage.py test functional_tests

## reliability: concurrent writers (SQLite, PostgreSQL), two migrates racing on PostgreSQL, killed worker, mail server down, unit tests on PostgreSQL, the database host task for real (as root, 127.0.0.6)
reliability: $(STAMP)
	$(PY) -m unittest discover -s reliability -p 'check_*.py' -t . -v

## bench: each trick in process, throughput against a bare-view ceiling (wrk), FT wall times
bench: $(STAMP) browser
	$(PY) bench/in_process.py
	$(PY) bench/throughput.py
	$(PY) bench/ft_times.py

## staging-rehearsal: as root, a real staging host on 127.0.0.2: deploy, FTs against it, teardown
staging-rehearsal: $(STAMP) browser
	$(PY) -m rigs.rehearsal

## scale-out-rehearsal: as root, staging over https from a local CA (FTs, HSTS, check --deploy, the loop)
scale-out-rehearsal: $(STAMP) browser
	$(PY) -m rigs.scale_out

## ci: everything CI runs
ci: test reliability staging-rehearsal scale-out-rehearsal

## style: format and fix what ruff can
style: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## browser: Debian's Chromium, its chromedriver and certutil (installed when missing, if we are root)
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ] || [ ! -x /usr/bin/certutil ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	      -o DPkg::Lock::Timeout=300 --no-install-recommends chromium chromium-driver libnss3-tools; \
	  else \
	    echo "The functional tests need Chromium (and certutil, to trust a staging CA):"; \
	    echo "  sudo apt-get install chromium chromium-driver libnss3-tools"; \
	    exit 1; \
	  fi; \
	fi
