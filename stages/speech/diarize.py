"""diarize: who spoke each word, from speaker embeddings of an offline model.

The embeddings come from Resemblyzer's GE2E voice encoder, whose weights (``pretrained.pt``)
ship inside the PyPI wheel, so nothing is fetched at run time. It needs torch, so it lives
in the optional ``interviews`` extra; without it the stage returns ``available=False`` with
a note, and the rest of the job goes on without speaker turns.

1. Speech regions are the transcript's words merged across short pauses, cut again where
   the audio is silent for a quarter second (ASR word times stretch over pauses); each region is
   cut into 1.6 s windows side by side (a shorter region is one shorter window), and every
   window is embedded (256-d, unit length) from one mel spectrogram of the whole track
   (computed a minute at a time from the audio on disk), in batches.
2. The number of speakers is estimated, not assumed: spherical k-means for k = 2..6,
   scored by the silhouette on cosine distance (see :func:`estimate_speakers` for when a
   split counts as another voice). Tiny clusters (stray windows) are folded into their
   nearest neighbour.
3. Only where two neighbouring windows of a region take different voices, or one is nearly
   as close to another voice, are the windows every 0.4 s between them embedded too (one voice
   throughout: none), and the voices' centroids refitted on all the windows. A short source
   (under ``MIN_COARSE_WINDOWS`` windows) has every window at the 0.4 s hop from the start.
   benchmarks/diarize_cost.py measures what this saves.
4. Each word takes the centroid nearest to the mean of the windows that cover it,
   weighted by overlap and by how centred the word is in each window; runs shorter than
   ``MIN_RUN_S`` between two runs of one other speaker are relabelled to it, and turns
   are the runs of one speaker.

The parts live beside this module: ``voice_encoder`` (the model, its mel spectrogram, embedding
windows), ``diarize_windows`` (regions and the two passes' windows), ``diarize_clusters`` (step 2
and the refit) and ``diarize_labels`` (step 4). This module runs them (:func:`diarize`), is the
stage, and re-exports their names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from engine.stage import Resources, Stage, StageContext
from engine.types import AnalysisAudio, Diarization, Transcript, Word
from stages.media import AudioFile
from stages.speech.diarize_clusters import (
    MAX_SPEAKERS,
    MIN_CLUSTER_SHARE,
    MIN_SILHOUETTE,
    MIN_SPEAKER_S,
    SAME_VOICE_COS,
    SILHOUETTE_STEP,
    _normalise,
    estimate_speakers,
    margins,
    refit_centroids,
    silhouette,
    spherical_kmeans,
)
from stages.speech.diarize_labels import MIN_RUN_S, label_words, smooth_labels, turns_from_words
from stages.speech.diarize_windows import (
    COARSE_HOP_FRAMES,
    FRAME_S,
    HOP_FRAMES,
    MIN_WINDOW_FRAMES,
    REGION_GAP_S,
    WINDOW_FRAMES,
    _windows_at,
    refine_windows,
    region_frames,
    region_windows,
    speech_regions,
    split_at_silence,
    window_starts,
)
from stages.speech.voice_encoder import (
    MEL_BANDS,
    MEL_HOP,
    MEL_N_FFT,
    MEL_PIECE_FRAMES,
    Mel,
    embed_windows,
    load_voice_encoder,
    mel_frames,
    volume_gain,
)

__all__ = [
    "COARSE_HOP_FRAMES", "FRAME_S", "HOP_FRAMES", "MAX_SPEAKERS", "MEL_BANDS", "MEL_HOP", "MEL_N_FFT",
    "MEL_PIECE_FRAMES", "METHOD", "MIN_CLUSTER_SHARE", "MIN_COARSE_WINDOWS", "MIN_RUN_S", "MIN_SILHOUETTE",
    "MIN_SPEAKER_S", "MIN_WINDOW_FRAMES", "REFINE_MARGIN", "REGION_GAP_S", "SAME_VOICE_COS", "SILHOUETTE_STEP",
    "WINDOW_FRAMES", "DiarizeRequest", "DiarizeStage", "Mel", "diarize", "embed_windows", "estimate_speakers",
    "label_words", "load_voice_encoder", "margins", "mel_frames", "refine_windows", "refit_centroids",
    "region_frames", "region_windows", "silhouette", "smooth_labels", "speech_regions", "spherical_kmeans",
    "split_at_silence", "turns_from_words", "volume_gain", "window_starts", "with_speakers",
]

REFINE_MARGIN = 0.03  # a coarse window this close to another voice's centroid is in doubt
MIN_COARSE_WINDOWS = 150  # fewer (under ~3 min of speech): every window at the fine hop, as the
# voice count from a few dozen windows is unsure (measured, 1.6 s windows: jfk.wav's one voice, 10
# windows, split in two; pyannote's sample lost a word of 34) and a short source costs little anyway
METHOD = "resemblyzer-ge2e + spherical k-means"


def diarize(encoder: Any, samples: np.ndarray | AudioFile, rate: int, origin: float,
            words: Sequence[Word], coarse_hop: int = COARSE_HOP_FRAMES) -> Diarization:
    """Speaker turns of ``words`` (source times) over ``samples`` that start at ``origin``.

    Two passes of windows: the speech regions are embedded ``coarse_hop`` apart (1.6 s: windows
    side by side), the voices are found from those, and only where two neighbouring windows of
    a region disagree, or one lies close to another voice (``REFINE_MARGIN``), are the fine-hop
    windows between them embedded too; the voices' centroids are refitted on all the windows and
    every word is labelled from them. One voice throughout costs the first pass alone. Under
    ``MIN_COARSE_WINDOWS`` coarse windows, and with ``coarse_hop=HOP_FRAMES``, every window is at
    the fine hop (the single pass this replaced; benchmarks/diarize_cost.py compares them).
    """
    mel = Mel(samples, rate)  # a piece at a time: two passes (energy, then the windows) instead of the whole track
    regions = split_at_silence(speech_regions(words), mel.energy(), origin)
    bounds = region_frames(regions, origin, len(mel))
    coarse = [w for a, b in bounds for w in _windows_at(a, b, window_starts(a, b, coarse_hop))]
    if len(coarse) < MIN_COARSE_WINDOWS:
        coarse_hop = HOP_FRAMES
        coarse = region_windows(regions, origin, len(mel))
    if not coarse:
        return Diarization(True, METHOD, note="no speech long enough to tell voices apart")
    emb = _normalise(embed_windows(encoder, mel, coarse))
    speech_s = sum(b - a for a, b in speech_regions(words))
    labels, cents, quality = estimate_speakers(emb, speech_s)

    windows = coarse
    if len(cents) > 1 and coarse_hop != HOP_FRAMES:
        extra = refine_windows(bounds, labels, margins(emb, labels, cents) < REFINE_MARGIN, coarse_hop)
        if extra:
            emb = np.concatenate([emb, _normalise(embed_windows(encoder, mel, extra))])
            windows = coarse + extra
            # the voices' centres from every window embedded: from the coarse ones alone they sit
            # a little off (cos 0.997 to the fine grid's), enough to flip 2 % of the looped talk's words
            cents = refit_centroids(emb, cents)
    spans = origin + np.array(windows, np.float64) * FRAME_S
    per_word = smooth_labels(words, label_words(words, spans, emb, cents))
    # name speakers S1, S2, ... in order of first appearance
    order: dict[int, str] = {}
    for lab in per_word:
        if lab >= 0 and lab not in order:
            order[lab] = f"S{len(order) + 1}"
    names = tuple(order.get(lab, "") for lab in per_word)
    return Diarization(True, METHOD, speakers=tuple(order.values()), turns=turns_from_words(words, names),
                       word_speakers=names, quality=round(quality, 3))


def with_speakers(transcript: Transcript, diarization: Diarization) -> Transcript:
    """The transcript with each word's ``speaker`` set (unchanged when diarization is missing)."""
    if len(diarization.word_speakers) != len(transcript.words):
        return transcript
    words = tuple(
        Word(w.start, w.end, w.text, w.probability, s or None)
        for w, s in zip(transcript.words, diarization.word_speakers, strict=True)
    )
    return replace(transcript, words=words)


# -- the stage -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DiarizeRequest:
    audio: AnalysisAudio | None
    transcript: Transcript


class DiarizeStage(Stage[DiarizeRequest, Diarization]):
    name = "diarize"
    resources = Resources(cpus=1.0)

    def __init__(self) -> None:
        self._encoder: Any = None
        self._why_not = ""

    def setup(self, ctx: StageContext) -> None:
        if self._encoder is None and not self._why_not:
            self._encoder, self._why_not = load_voice_encoder(ctx.settings.cache_dir, threads=ctx.settings.cpu_threads)
            if self._why_not:
                ctx.log.warning(self._why_not)

    def process(self, inputs: DiarizeRequest, ctx: StageContext) -> Diarization:
        if inputs.audio is None or not inputs.transcript.words:
            ctx.progress(1.0, "no speech: no speaker turns")
            return Diarization(True, METHOD, note="no speech")
        if self._encoder is None and not self._why_not:
            raise RuntimeError("the diarize stage was not set up")
        if self._encoder is None:
            ctx.progress(1.0, "speaker model unavailable")
            return Diarization(False, "unavailable", note=self._why_not)
        samples = AudioFile.of(inputs.audio)  # read a minute at a time, never held whole
        result = diarize(self._encoder, samples, inputs.audio.sample_rate, inputs.audio.start,
                         inputs.transcript.words)
        ctx.progress(1.0, f"{len(result.speakers)} speakers, {len(result.turns)} turns")
        return result
