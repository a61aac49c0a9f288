# BLT Studio: `make run` sets up and serves the web app, `make test` sets up and runs every test.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build on this machine's disk installs in seconds; any torch >= 2.5 works.
TORCH_SPEC ?= torch==2.13.0

.PHONY: run test setup setup-test clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

setup: $(BIN)/python
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)" || $(BIN)/python -m pip install -q "torch>=2.5"
	$(BIN)/python -m pip install -q -e .

setup-test: setup
	$(BIN)/python -m pip install -q -e ".[test]"
	@# Browser tests drive Debian's Chromium, never a downloaded browser.
	@command -v chromium >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ]; then S=; else S=sudo; fi; \
	  $$S apt-get update -q && $$S apt-get install -y -q --no-install-recommends chromium; }

run: setup
	@echo "BLT Studio: http://127.0.0.1:$${PORT:-8000}  (model: $${BLT_MODEL:-models/blt-studio}; Ctrl-C stops)"
	$(BIN)/gunicorn -c gunicorn.conf.py "app:create_app()"

test: setup-test
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
