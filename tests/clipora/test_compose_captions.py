"""The captions step's request (clipora/compose.py): the job's captionEmphasis / captionEmoji, the clip's keywords,
and the fit shots on the clip's timeline with the fitted picture's bottom edge (as the render places captions)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from clipora.compose import StageSet, job_graph
from engine.graph import JobInput, Scope
from engine.options import ProcessOptions
from engine.types import ClipMetadata, CropPath, Shot, Word
from kernels.resize import fit_rect
from stages.framing import output_geometry


def _request(tmp_path: Path, options: ProcessOptions, segments=(), shots=()):
    geo = output_geometry(1280, 720, "9:16")
    meta = ClipMetadata("t", "h", "k", "joy", ("hiring", "kubernetes"), 7.0)
    words = (Word(10.2, 10.5, "We"), Word(10.6, 11.0, "hired"), Word(11.1, 11.6, "Kubernetes"), Word(12, 12.4, "folks"))
    clip = SimpleNamespace(moment=SimpleNamespace(start=10.0, end=20.0, metadata=meta), segments=tuple(segments),
                           spliced=bool(segments), words=words, caption_start=10.0, caption_end=20.0, index=1)
    plan = SimpleNamespace(geometry=geo, media=SimpleNamespace(fps=25.0), transcript=SimpleNamespace(language="en"))
    path = CropPath(25.0, 10.0, (0.0,) * 250, (0.0,) * 250, "face", shots=tuple(shots))
    scope = Scope(JobInput("j", tmp_path / "in.mp4", options), tmp_path, plan=plan, clip=clip,  # type: ignore[arg-type]
                  clip_results={"reframe": path})
    step = next(s for s in job_graph(StageSet()).clip if s.name == "captions")
    return step.request(scope), geo


def test_the_captions_request_carries_the_options_keywords_and_fit_shots(tmp_path: Path) -> None:
    shots = (Shot(10.0, 13.0, "face"), Shot(13.0, 16.0, "fit"), Shot(16.0, 20.0, "face"))
    req, geo = _request(tmp_path, ProcessOptions(caption_preset="beasty", caption_emoji=True), shots=shots)
    assert (req.emphasis, req.emoji) == ("auto", True)
    assert req.keywords == ("hired", "kubernetes")  # the hashtags as the captions say them
    _, y, _, h = fit_rect(1280, 720, geo.out_w, geo.out_h)
    assert req.fit_spans == ((3.0, 6.0),) and req.fit_bottom == y + h  # clip seconds
    # a spliced clip: the fit shot's kept pieces on the clip's own timeline
    req, _ = _request(tmp_path, ProcessOptions(caption_preset="mozi", caption_emphasis="none"),
                      segments=((10.0, 12.0), (14.0, 20.0)), shots=shots)
    assert req.emphasis == "none" and req.fit_spans == ((2.0, 4.0),)
    # no fit shot: nothing moves
    req, _ = _request(tmp_path, ProcessOptions(caption_preset="mozi"), shots=shots[:1])
    assert req.fit_spans == () and req.fit_bottom == 0
