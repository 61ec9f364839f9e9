# The README's two commands: `make demo` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/rewardbot demo

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo

# Two processes run the tests; those marked ``exclusive`` then run alone (see tests/conftest.py).
test: lint
	$(BIN)/python -m pytest -n 2 -m "not exclusive"
	$(BIN)/python -m pytest -m exclusive

# Speed figures, printed (not part of `make test`).
# With PostgreSQL too where the machine has it (as CI's), else SQLite alone.
bench: $(VENV)/.installed
	REWARDBOT_TEST_POSTGRES_URL=$${REWARDBOT_TEST_POSTGRES_URL-postgresql://postgres@127.0.0.1:5432/postgres} \
		$(BIN)/python -m bench
