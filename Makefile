# The two commands: `make demo` (the main job) and `make test` (the whole suite).
# Both install what they need: Python packages into .venv, the Node tools (the tests' Mermaid and AsyncAPI
# parsers, the observer UI's Mermaid bundle) into tools/node/node_modules, the stack's jars into
# ~/.cache/opengym, Debian's packages (the browser the UI tests drive among them).

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_DIR := tools/node
NODE_STAMP := $(NODE_DIR)/node_modules/.installed

.PHONY: install demo test test-unit stack-up stack-down bench clean

$(STAMP): pyproject.toml .ci/debian-packages
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required (Python 3.11)"; exit 1; }
	scripts/install-debian-packages
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# npm ci only when node_modules is missing or the lock changed; after the Debian packages (node, npm).
# The tests' parsers and the observer UI's Mermaid bundle (served from there; never fetched at run time).
$(NODE_STAMP): $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json | $(STAMP)
	@command -v npm >/dev/null || { echo "node and npm are required (scripts/install-debian-packages)"; exit 1; }
	cd $(NODE_DIR) && npm ci --loglevel=error
	touch $(NODE_STAMP)

install: $(STAMP) $(NODE_STAMP)

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
	rm -rf $(VENV) *.egg-info .pytest_cache $(NODE_DIR)/node_modules
