"""Dockerfile.cuda: the CUDA image. Docker does not run here, so what is checked is what can be
without it: hadolint passes; the base is a pinned NVIDIA CUDA image; the driver capabilities include
`video` (NVDEC/NVENC); it runs as a non-root user; the lock is installed with its hashes and every
package of the [gpu] extra is installed pinned; every CLIPORA_* variable it sets is a real setting.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from engine.config import Settings
from http_gateway.config import GatewaySettings

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile.cuda"


def _text() -> str:
    return DOCKERFILE.read_text()


def _instructions(name: str) -> list[str]:
    """The arguments of every ``name`` instruction, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", _text())
    return [line.split(None, 1)[1] for line in joined.splitlines()
            if line.strip() and not line.startswith("#") and line.split()[0] == name]


def test_hadolint_passes_on_dockerfile_cuda() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (make install brings it)")
    r = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_base_is_a_pinned_nvidia_cuda_runtime() -> None:
    (base,) = _instructions("FROM")
    assert re.fullmatch(r"nvidia/cuda:\d+\.\d+\.\d+-cudnn-runtime-ubuntu\d\d\.\d\d", base), base


def test_driver_capabilities_include_video() -> None:
    env = " ".join(_instructions("ENV"))
    assert "NVIDIA_DRIVER_CAPABILITIES=compute,utility,video" in env


def test_it_runs_as_a_non_root_user() -> None:
    users = _instructions("USER")
    assert users, "no USER line"
    assert users[-1] not in {"root", "0"}
    assert "useradd" in _text() and "--uid 10001" in _text()


def test_healthcheck_and_serve() -> None:
    assert _instructions("HEALTHCHECK") and "/healthz" in _instructions("HEALTHCHECK")[0]
    assert _instructions("CMD")[-1] == '["serve"]'


def test_the_lock_with_hashes_and_the_gpu_extra_pinned() -> None:
    run = " ".join(_instructions("RUN"))
    assert re.search(r"--require-hashes\s.*-r requirements/main\.lock", run)
    assert "python -m stages.speech.models" in run
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["gpu"]
    for requirement in extra:
        name = re.split(r"[<>=!~ \[]", requirement, maxsplit=1)[0].lower()
        # the tensorrt metapackage is a stub: its real parts are installed as tensorrt-cu12-*
        pattern = r"tensorrt-cu12-bindings==[\d.]+" if name == "tensorrt" else rf"{re.escape(name)}==[\d.]+"
        assert re.search(pattern, run, re.IGNORECASE), requirement


def test_it_sets_only_real_settings() -> None:
    known = {f"CLIPORA_{f.name.upper()}" for cls in (Settings, GatewaySettings) for f in dataclasses.fields(cls)}
    names = set(re.findall(r"\bCLIPORA_[A-Z0-9_]+", " ".join(_instructions("ENV"))))
    assert names and names <= known, names - known
