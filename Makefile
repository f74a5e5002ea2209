# Two commands do all the set-up: `make test` and `make demo`.
# Both create (once) and reuse a local virtual environment in .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# Two pytest workers (one per core here); a test module stays on one worker.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The whole pipeline on the embedded default (sweep -> collect -> fit -> report -> Moore's law), under
# runs/demo; a re-run reuses finished runs. See scripts/demo.sh.
demo: $(STAMP)
	VENV=$(VENV) bash scripts/demo.sh

clean:
	rm -rf runs build *.egg-info .pytest_cache
