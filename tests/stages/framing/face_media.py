"""Real frames of the committed test media for the face-runner tests (decoded with stages.media)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.types import FaceBox
from stages.media import probe_media
from stages.media.decode import sample_frames

MEDIA = Path(__file__).resolve().parents[2] / "media"


def media_frames(names: tuple[str, ...] = ("face_static.mp4", "two_faces.mp4"), per_file: int = 3) -> np.ndarray:
    """``per_file`` upright RGB frames, one a second from 0.5 s, of each file, as one (N, H, W, 3) batch."""
    frames: list[np.ndarray] = []
    for name in names:
        if not (MEDIA / name).exists():
            pytest.skip(f"test media {name} not generated")
        media = probe_media(MEDIA / name)
        frames += [rgb for _, rgb in sample_frames(media, 0.5, 0.5 + per_file, 1.0)][:per_file]
    return np.stack(frames)


def iou(a: FaceBox, b: FaceBox) -> float:
    iw = min(a.x2, b.x2) - max(a.x1, b.x1)
    ih = min(a.y2, b.y2) - max(a.y1, b.y1)
    inter = max(iw, 0.0) * max(ih, 0.0)
    return inter / (a.area + b.area - inter)


def matched_ious(found: list[list[FaceBox]], reference: list[list[FaceBox]]) -> list[float]:
    """Per frame the same number of faces (asserted); each reference face's best IoU among ``found``."""
    assert [len(f) for f in found] == [len(r) for r in reference]
    return [max(iou(f, r) for f in faces) for faces, refs in zip(found, reference, strict=True) for r in refs]
