"""Output: the render, the poster, and the manifest (with each clip's crop path as keyframes)."""

from __future__ import annotations

from stages.output.croppath import crop_keyframes
from stages.output.manifest import (
    ClipEntryRequest,
    ClipEntryStage,
    ManifestRequest,
    ManifestStage,
    build_manifest,
    clip_name,
    framing_entry,
    speaker_analysis,
)
from stages.output.poster import (
    PosterRequest,
    PosterStage,
)
from stages.output.render import (
    RenderRequest,
    RenderStage,
    output_rate,
)

__all__ = [
    "ClipEntryRequest",
    "ClipEntryStage",
    "ManifestRequest",
    "ManifestStage",
    "PosterRequest",
    "PosterStage",
    "RenderRequest",
    "RenderStage",
    "build_manifest",
    "clip_name",
    "crop_keyframes",
    "framing_entry",
    "output_rate",
    "speaker_analysis",
]
