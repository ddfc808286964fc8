"""Output: the render, the poster, and the manifest."""

from __future__ import annotations

from stages.output.manifest import (
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
    "ManifestRequest",
    "ManifestStage",
    "PosterRequest",
    "PosterStage",
    "RenderRequest",
    "RenderStage",
    "build_manifest",
    "clip_name",
    "framing_entry",
    "output_rate",
    "speaker_analysis",
]
