# Two commands do everything on a fresh machine with Python 3.11+:
#   make demo   build the demo warehouse and preview every demo audience
#   make test   lint, type-check and run the whole test suite
# uv is installed into .tools/ when it is not on the PATH; it never downloads a Python.

PYTHON ?= python3
UV_VERSION := 0.13.8
EXTRAS := --extra postgres --extra spark --extra s3
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(shell command -v $(PYTHON))

UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv/bin

.PHONY: demo test lint format typecheck bench clean setup

setup: .venv/.synced

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen $(EXTRAS)
	touch $@

demo: setup
	$(VENV)/corral demo $(DEMO_ARGS)

lint: setup
	$(VENV)/ruff format --check src tests bench
	$(VENV)/ruff check src tests bench
	$(VENV)/mypy

format: setup
	$(VENV)/ruff format src tests bench
	$(VENV)/ruff check --fix src tests bench

typecheck: setup
	$(VENV)/mypy

test: lint
	$(VENV)/pytest $(PYTEST_ARGS)

bench: setup
	$(VENV)/python bench/audiences.py $(BENCH_ARGS)

clean:
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache corral-demo
