# The two commands: `make demo` (the main job) and `make test` (the whole suite).
# Both install what they need: Python packages into .venv, the stack's jars into ~/.cache/opengym.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-unit stack-up stack-down bench clean

$(STAMP): pyproject.toml .ci/debian-packages tools/node/package-lock.json
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required (Python 3.11)"; exit 1; }
	scripts/install-debian-packages
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	# The observer UI's browser assets (mermaid), served from tools/node/node_modules; never fetched at run time.
	@command -v npm >/dev/null || { echo "npm (Node.js) is required for the observer UI's assets (tools/node)"; exit 1; }
	cd tools/node && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $(STAMP)

install: $(STAMP)

stack-up: install
	$(BIN)/opengym stack up

stack-down: install
	$(BIN)/opengym stack down

demo: install
	$(BIN)/opengym demo $(DEMO_ARGS)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: install
	$(BIN)/python -m pytest -m "unit or agent" $(PYTEST_ARGS)

bench: install
	$(BIN)/opengym bench pipeline $(BENCH_ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
