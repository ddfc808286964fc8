"""Fixtures shared by the face-runner tests (tests/conftest.py's ``settings`` has a private cache)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import Settings
from stages.framing.face_detector import centerface_model_path


@pytest.fixture(scope="session")
def model_path(settings: Settings) -> Path:
    """The dynamic-shape CenterFace model, converted once into the session's cache."""
    return centerface_model_path(settings)
