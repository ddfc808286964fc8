"""Shared fixtures: the project's committed test media, the optional real recordings, settings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.backends import select_backend
from engine.config import Settings
from engine.stage import StageContext

MEDIA = Path(__file__).parent / "media"
SHARED_MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"


@pytest.fixture(scope="session")
def media_dir() -> Path:
    return MEDIA


@pytest.fixture(scope="session")
def truth() -> dict:
    return json.loads((MEDIA / "truth.json").read_text())["files"]


@pytest.fixture(scope="session")
def shared_media() -> Path:
    """The real recordings in ../shared/media; tests using them skip where it is absent."""
    if not SHARED_MEDIA.is_dir():
        pytest.skip("../shared/media is not present on this machine")
    return SHARED_MEDIA


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings.from_env(environ={}, cache_dir=tmp_path_factory.getbasetemp() / "cache", threads=2)


@pytest.fixture
def ctx(tmp_path: Path, settings: Settings) -> StageContext:
    return StageContext("test-job", tmp_path, settings, select_backend("cpu"))


def need_tool(name: str) -> None:
    if shutil.which(name) is None:
        pytest.skip(f"{name} is not installed")
