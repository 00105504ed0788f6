# Quick start: `make demo` and `make test`. Both create .venv and install the project when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BACKENDS := $(wildcard backends/*/pyproject.toml)

.PHONY: demo demo-http test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml $(BACKENDS)
	$(BIN)/pip install -q -e ".[dev]" $(foreach p,$(BACKENDS),-e $(dir $(p)))
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

demo-http: $(STAMP)
	$(BIN)/python examples/http_demo.py

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy atoma_actors backends/memory/atoma_backend_memory backends/sql/atoma_backend_sql backends/http/atoma_backend_http backends/server/atoma_server

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
