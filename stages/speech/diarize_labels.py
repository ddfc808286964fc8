"""The diarizer's labelling: each word's speaker from the windows that cover it, short runs between
two runs of one other speaker smoothed away, and the turns (runs of one speaker)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.types import SpeakerTurn, Word

MIN_RUN_S = 0.6


def label_words(words: Sequence[Word], spans: np.ndarray, emb: np.ndarray, cents: np.ndarray) -> list[int]:
    """Speaker index per word (-1 when no window covers it and no neighbour helps)."""
    out: list[int] = []
    # only windows that overlap a word count, and no window is longer than WINDOW_FRAMES: the
    # candidates are found by bisection on the window starts (sorted), not by scanning them all
    # (every word against every window made a 4-hour source's diarization hours long)
    order = np.argsort(spans[:, 0], kind="stable")
    spans, emb = spans[order], emb[order]
    starts = spans[:, 0]
    longest = float((spans[:, 1] - spans[:, 0]).max()) if len(spans) else 0.0
    for w in words:
        lo, hi = np.searchsorted(starts, w.start - longest, "left"), np.searchsorted(starts, w.end, "left")
        near, near_emb = spans[lo:hi], emb[lo:hi]
        ov = np.clip(np.minimum(near[:, 1], w.end) - np.maximum(near[:, 0], w.start), 0.0, None)
        if ov.sum() <= 0:
            out.append(-1)
            continue
        # windows centred on the word count most: one that only grazes it mostly holds
        # the neighbours' speech (at a turn change, the other speaker's)
        half = np.maximum((near[:, 1] - near[:, 0]) / 2, 1e-3)
        centred = np.clip(1.0 - np.abs((w.start + w.end) / 2 - (near[:, 0] + near[:, 1]) / 2) / half, 0.05, 1.0)
        v = (near_emb * (ov * centred ** 2)[:, None]).sum(0)
        out.append(int(np.argmax(cents @ v)))
    # words no window reached (isolated short words) take the nearer labelled neighbour
    for i, lab in enumerate(out):
        if lab == -1:
            prev = next((j for j in range(i - 1, -1, -1) if out[j] != -1), None)
            nxt = next((j for j in range(i + 1, len(out)) if out[j] != -1), None)
            cand = [j for j in (prev, nxt) if j is not None]
            if cand:
                j = min(cand, key=lambda j: abs(words[j].start - words[i].start))
                out[i] = out[j]
    return out


def smooth_labels(words: Sequence[Word], labels: list[int], min_run_s: float = MIN_RUN_S) -> list[int]:
    """Relabel short runs sandwiched between two runs of one other speaker."""
    labels = list(labels)
    changed = True
    while changed:
        changed = False
        runs = _runs(labels)
        for r, (a, b, lab) in enumerate(runs):
            if 0 < r < len(runs) - 1 and runs[r - 1][2] == runs[r + 1][2] != lab:
                if words[b - 1].end - words[a].start < min_run_s:
                    labels[a:b] = [runs[r - 1][2]] * (b - a)
                    changed = True
                    break
    return labels


def _runs(labels: Sequence[int]) -> list[tuple[int, int, int]]:
    runs: list[tuple[int, int, int]] = []
    for i, lab in enumerate(labels):
        if runs and runs[-1][2] == lab:
            runs[-1] = (runs[-1][0], i + 1, lab)
        else:
            runs.append((i, i + 1, lab))
    return runs


def turns_from_words(words: Sequence[Word], speakers: Sequence[str]) -> tuple[SpeakerTurn, ...]:
    turns: list[SpeakerTurn] = []
    for w, s in zip(words, speakers, strict=True):
        if not s:
            continue
        if turns and turns[-1].speaker == s:
            turns[-1] = SpeakerTurn(turns[-1].start, w.end, s)
        else:
            turns.append(SpeakerTurn(w.start, w.end, s))
    return tuple(turns)
