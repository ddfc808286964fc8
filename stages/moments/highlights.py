"""highlights: the moment-selection stage (mode ai: a provider picks N windows; mode none: one).

The stage is thin: a :class:`MomentProvider` does the work (stages/moments/): the local
scorer (no network, the default), or Gemini / an OpenAI-compatible model with validation,
retries and the local scorer as fallback. The provider is given, or built from the
settings at setup (``stages.moments.build_provider``). Input and output types are
documented in stages/moments/base.py.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.config import Settings
from engine.stage import Resources, Stage, StageContext
from engine.types import MomentSelection
from stages.moments.base import MomentProvider, MomentRequest
from stages.moments.embeddings import release_shared_encoder
from stages.moments.local import LocalMomentScorer

#: The stage's input (the name the pipeline has always used).
HighlightsRequest = MomentRequest

__all__ = ["HighlightsRequest", "HighlightsStage", "LocalMomentScorer", "MomentProvider", "MomentRequest"]


class HighlightsStage(Stage[MomentRequest, MomentSelection]):
    name = "highlights"
    resources = Resources(cpus=1.0)  # the local scorer; a remote provider waits on the network

    def __init__(self, provider: MomentProvider | None = None,
                 factory: Callable[[Settings], MomentProvider] | None = None) -> None:
        self.provider = provider
        self.factory = factory

    def setup(self, ctx: StageContext) -> None:
        if self.provider is None:
            self.provider = self.factory(ctx.settings) if self.factory else LocalMomentScorer()

    def process(self, inputs: MomentRequest, ctx: StageContext) -> MomentSelection:
        if self.provider is None:
            raise RuntimeError("the highlights stage was not set up")
        ctx.progress(0.0, f"finding moments ({self.provider.name})")
        try:
            result = self.provider.select(inputs)
        finally:
            # the clip phase that follows never needs the sentence encoder: its memory goes back now
            release_shared_encoder()
        used = sorted({m.provider for m in result.moments})
        ctx.progress(1.0, f"{len(result.moments)} of {result.requested} clips chosen by {', '.join(used) or '-'}"
                          + (f" ({result.genre})" if result.genre else ""))
        return result
