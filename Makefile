# grokscope: `make run` trains the canonical run; `make test` runs the tests.
# Both create .venv on first use: torch==2.13.0 first (the CPU build; a looser pin would
# pull a multi-GB CUDA build), then the package in editable mode.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0

.PHONY: install extras run test test-slow docs clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/.installed

# optional extras: TransformerLens (~600 MB; export and its equivalence test), Ray (sweeps on a cluster), Playwright
# (PNG export and the report's browser test; uses Debian's chromium, never downloads a browser), TensorBoard and W&B (--log),
# DuckDB (grokscope query) and MkDocs (make docs)
extras: install
	$(BIN)/pip install -q -e '.[dev,lens,browser,ray,tensorboard,wandb,query,docs]'

run: install
	$(BIN)/grokscope run

test: install
	$(BIN)/python -m pytest -q

# the documentation, static HTML in site/ (offline; --strict fails on a broken reference)
docs: install
	$(BIN)/pip install -q -e '.[docs]'
	$(BIN)/mkdocs build --strict

test-slow: install
	$(BIN)/python -m pytest -q -m slow

clean:
	rm -rf $(VENV) build site src/*.egg-info .pytest_cache .hypothesis
