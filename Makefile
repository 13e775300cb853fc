# Clinicode developer and user entry points. `make serve` and `make test` do all the set-up.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install setup serve test test-fast lint format bench clean

install: $(STAMP) setup

# The virtual environment is rebuilt only when the pins or the project metadata change.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,spark]'
	@touch $(STAMP)

# Builds the code-set knowledge base and the default model pack; a no-op when both are current.
setup: $(STAMP)
	$(BIN)/clinicode setup

serve: install
	$(BIN)/clinicode serve --host $(HOST) --port $(PORT)

# Tests run offline: their `clinicode setup` does not try to download the official code sets
# (`clinicode codes fetch`); set CLINICODE_FETCH_ON_SETUP=1 to let it.
test test-fast: export CLINICODE_FETCH_ON_SETUP ?= 0

test: install
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not browser"

lint: $(STAMP)
	$(BIN)/ruff check clinicode nlp models training serve tests bench
	$(BIN)/ruff format --check clinicode nlp models training serve tests bench
	$(BIN)/mypy clinicode nlp models training serve

format: $(STAMP)
	$(BIN)/ruff format clinicode nlp models training serve tests bench
	$(BIN)/ruff check --fix clinicode nlp models training serve tests bench

bench: $(STAMP)
	@for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
