"""Edited test media with hard cuts, generated once per session (scripts/make_shots_media.py).

``edited(tmp_path_factory)``: the 16:9 video with two face shots, a text card and a cut back, and
its truth. ``real_cuts(tmp_path_factory, shared)``: real talking heads from ../shared/media cut
together (another person, a zoomed angle of the same person, back), 25 fps, 1280x720.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from scripts.make_shots_media import REAL_CUT_FRAMES, make
from scripts.make_shots_media import real_cuts as make_real_cuts

__all__ = ["REAL_CUT_FRAMES", "edited", "real_cuts"]


def edited(factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = factory.getbasetemp() / "shots-media"
    out, truth_file = folder / "shots.mp4", folder / "shots.json"
    if not truth_file.exists():
        if shutil.which("ffmpeg") is None:
            pytest.skip("ffmpeg is not installed")
        folder.mkdir(parents=True, exist_ok=True)
        truth = make(out)
        truth_file.write_text(json.dumps(truth))
    return out, json.loads(truth_file.read_text())


def real_cuts(factory: pytest.TempPathFactory, shared: Path) -> Path:
    out = factory.getbasetemp() / "shots-media" / "real_cuts.mp4"
    if out.exists():
        return out
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    out.parent.mkdir(parents=True, exist_ok=True)
    return make_real_cuts(out, shared)
