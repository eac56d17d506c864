# Stroke AID: `make run` sets everything up and serves the site; `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: run setup atlas test lint format demo serve bench clean-data docker-check

run: setup demo serve

setup: $(VENV)/.installed node_modules/.installed locale/.compiled atlas

# The MNI-space atlases (AAL) the lesion pattern maps vascular territories with: Debian's
# mricron-data. Without it the platform runs, and territories are reported as unknown.
ATLAS_DIR ?= /usr/share/mricron/templates
atlas:
	@test -f $(ATLAS_DIR)/aal.nii.gz || { echo "Installing Debian's mricron-data (MNI atlases)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mricron-data) \
	  || echo "mricron-data could not be installed: vascular territories will be unknown"; }

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
	  || { echo "Python 3.11 is required (found: $$($(PYTHON) --version 2>&1))"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip wheel
	$(PIP) install --quiet -r requirements-dev.txt
	$(PIP) check
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

locale/.compiled: $(wildcard locale/*/LC_MESSAGES/*.po) $(VENV)/.installed
	$(PY) manage.py compilemessages --ignore=.venv --ignore=node_modules -v 0
	touch $@

demo: setup
	$(PY) manage.py migrate --no-input -v 0
	$(PY) manage.py demo_setup

serve:
	$(PY) manage.py serve --host $(HOST) --port $(PORT)

test: setup
	@test -x /usr/bin/chromium || { echo "Installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
	  || echo "chromium could not be installed: browser tests will be skipped"; }
	@{ test -x /usr/sbin/Orthanc && test -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so \
	  && test -x /usr/bin/dciodvfy; } || { echo "Installing Debian's orthanc, orthanc-dicomweb and dicom3tools for the DICOM tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq orthanc orthanc-dicomweb dicom3tools) \
	  || echo "orthanc/dicom3tools could not be installed: gateway and validator tests will be skipped"; }
	node --test tests/js/
	$(PY) -m pytest $(PYTEST_ARGS)

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports --no-cache
	npx --no-install eslint .

format:
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: setup
	for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean-data:
	rm -rf data

# Builds the image for real and runs the stack (PostgreSQL, Redis, web, worker), then an upload
# and a prediction through the web container (docker/check.sh; root and dockerd needed).
docker-check:
	sh docker/check.sh

