# Each target sets up its own virtual environment in .venv; nothing is installed globally.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= demo-output
# an editable install compiles nothing: byte-compile the sources, since every xsm command
# would otherwise compile them again where PYTHONDONTWRITEBYTECODE is set
COMPILE := $(BIN)/python -m compileall -q products archive labels caldb_manager schemas templates >/dev/null

.PHONY: demo test bench clean

$(BIN)/.xsm-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip
	$(BIN)/pip install --quiet -e '.[test]'
	$(COMPILE)
	touch $@

## The main job on the embedded default: a synthetic day end to end.
demo: $(BIN)/.xsm-installed
	$(BIN)/xsm demo --out $(OUT)

## The test suite.
test: $(BIN)/.xsm-installed
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

## Benchmarks (figures printed, no assertions).
bench: $(BIN)/.xsm-installed
	$(COMPILE)
	for f in bench/bench_*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
