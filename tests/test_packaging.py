"""The project builds into a wheel that carries its data (fonts, templates, static files), quietly."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from http_gateway.web import STATIC_DIR, TEMPLATES_DIR
from stages.captions import FONTS_DIR

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "stages", "kernels", "clipora", "http_gateway")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> tuple[set[str], str]:
    out, tree = tmp_path_factory.mktemp("wheel"), tmp_path_factory.mktemp("tree")
    # a copy of what the build reads, so that the build's own folders never land in the checkout
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__"))
    # the locked setuptools of the venv, as `make install` builds the project (no index needed)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v",
                            "-w", str(out), str(tree)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    (path,) = out.glob("clipora-*.whl")
    with zipfile.ZipFile(path) as z:
        return set(z.namelist()), built.stdout + built.stderr


def test_the_wheel_carries_every_font_template_and_static_file(wheel) -> None:
    names, _ = wheel
    data = [p for d in (FONTS_DIR, TEMPLATES_DIR, STATIC_DIR) for p in d.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts]
    assert len(data) >= 20
    missing = [p.relative_to(ROOT).as_posix() for p in data if p.relative_to(ROOT).as_posix() not in names]
    assert not missing, missing
    assert not [n for n in names if n.startswith("tests/") or "__pycache__" in n or n.endswith(".pyc")]


def test_the_build_prints_no_package_discovery_warning(wheel) -> None:
    _, log = wheel
    assert "is absent from the `packages` configuration" not in log
    assert "Package would be ignored" not in log
