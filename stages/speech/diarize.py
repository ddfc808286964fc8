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
"""

from __future__ import annotations

import warnings
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from engine.stage import Resources, Stage, StageContext
from engine.types import AnalysisAudio, Diarization, SpeakerTurn, Transcript, Word
from stages.media import AudioFile

FRAME_S = 0.01  # the encoder's mel hop
WINDOW_FRAMES = 160  # 1.6 s, the encoder's partial-utterance length
HOP_FRAMES = 40  # the fine hop (0.4 s): every window near a possible change of voice
COARSE_HOP_FRAMES = 160  # the first pass's hop (1.6 s, windows side by side): see diarize()
REFINE_MARGIN = 0.03  # a coarse window this close to another voice's centroid is in doubt
MIN_COARSE_WINDOWS = 150  # fewer (under ~3 min of speech): every window at the fine hop, as the
# voice count from a few dozen windows is unsure (measured, 1.6 s windows: jfk.wav's one voice, 10
# windows, split in two; pyannote's sample lost a word of 34) and a short source costs little anyway
MIN_WINDOW_FRAMES = 50
REGION_GAP_S = 0.3
MAX_SPEAKERS = 6
MIN_SILHOUETTE = 0.2
SILHOUETTE_STEP = 0.05
MIN_SPEAKER_S = 4.0
SAME_VOICE_COS = 0.91  # centroids this similar are one voice (measured: one espeak voice split
# into two gives 0.917-0.934; two espeak voices 0.857-0.904; two real voices 0.835-0.854)
MIN_CLUSTER_SHARE = 0.04
MIN_RUN_S = 0.6
METHOD = "resemblyzer-ge2e + spherical k-means"


# -- the model -----------------------------------------------------------------------------


def load_voice_encoder() -> tuple[Any, str]:
    """(encoder, "") or (None, why it is unavailable). Never raises."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # webrtcvad's pkg_resources deprecation notice
            from resemblyzer import VoiceEncoder
    except Exception as exc:  # ImportError, or torch failing to load its libraries
        return None, (f"speaker diarization unavailable: {type(exc).__name__}: {exc} "
                      "(install the 'interviews' extra: pip install -e '.[interviews]')")
    try:
        import torch

        torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
        return VoiceEncoder("cpu", verbose=False), ""
    except Exception as exc:
        return None, f"speaker diarization unavailable: the voice encoder failed to load: {exc}"


#: the encoder's mel analysis (Resemblyzer's hparams): 25 ms windows every 10 ms, 40 bands
MEL_N_FFT, MEL_HOP, MEL_BANDS = 400, 160, 40
#: mel frames computed at once (60 s): the STFT of a piece, not of the whole track, is in memory
MEL_PIECE_FRAMES = 6000


def volume_gain(mean_square: float, target_dbfs: float = -30.0) -> float:
    """Resemblyzer's ``normalize_volume(wav, -30, increase_only=True)`` as a factor, from mean(wav^2)."""
    if mean_square <= 0:
        return 1.0
    change = target_dbfs - 10 * np.log10(mean_square)
    return 1.0 if change < 0 else float(10 ** (change / 20))


class Mel:
    """The encoder's mel spectrogram of a track, computed on demand a piece at a time.

    Frames are those of Resemblyzer's ``wav_to_mel_spectrogram`` of the whole volume-normalised
    track (centred 25 ms windows, zero padding at both ends), but only one piece (``piece``
    frames, 60 s) is held at a time: ``frames(a, b)`` computes the piece that starts at ``a``
    when [a, b) is not in the one held. Read in increasing order (as the windows are), each
    frame is computed about once. ``samples`` is an array or the analysis audio on disk.
    """

    def __init__(self, samples: np.ndarray | AudioFile, rate: int, piece: int = MEL_PIECE_FRAMES) -> None:
        if rate != 16_000:
            raise ValueError("the voice encoder expects 16 kHz audio")
        self.samples, self.rate, self.piece = samples, rate, piece
        n = len(samples)
        if isinstance(samples, AudioFile):
            mean_square = samples.mean_square()
        else:
            x = np.asarray(samples, np.float64)
            mean_square = float(np.dot(x, x) / n) if n else 0.0
        self.gain = np.float32(volume_gain(mean_square))
        self.n_frames = 1 + n // MEL_HOP
        self._held = (0, 0)
        self._mel = np.zeros((0, MEL_BANDS), np.float32)

    def __len__(self) -> int:
        return self.n_frames

    def compute(self, f0: int, f1: int) -> np.ndarray:
        """Frames [f0, f1) (clipped to the track), computed now."""
        import librosa

        f0, f1 = max(0, f0), min(f1, self.n_frames)
        if f1 <= f0:
            return np.zeros((0, MEL_BANDS), np.float32)
        half, n = MEL_N_FFT // 2, len(self.samples)
        lo, hi = f0 * MEL_HOP - half, (f1 - 1) * MEL_HOP + half  # the samples frames f0..f1-1 see
        seg = np.zeros(hi - lo, np.float32)
        a, b = max(lo, 0), min(hi, n)
        if b > a:
            seg[a - lo:b - lo] = np.asarray(self.samples[a:b], np.float32)
        if self.gain != 1.0:
            seg *= self.gain
        mel = librosa.feature.melspectrogram(y=seg, sr=self.rate, n_fft=MEL_N_FFT, hop_length=MEL_HOP,
                                             n_mels=MEL_BANDS, center=False)
        return mel.astype(np.float32).T

    def holds(self, a: int, b: int) -> bool:
        """Whether frames [a, b) are in the piece held now."""
        return self._held[0] <= a and b <= self._held[1]

    def frames(self, a: int, b: int, until: int | None = None) -> np.ndarray:
        """Frames [a, b); a new piece, when needed, runs to ``until`` (what the caller will read
        next; at most ``piece`` frames from ``a``) instead of a whole ``piece``."""
        if not self.holds(a, b):
            end = a + self.piece if until is None else min(a + self.piece, until)
            self._held = (a, min(self.n_frames, max(b, end)))
            self._mel = self.compute(*self._held)
        return self._mel[a - self._held[0]:b - self._held[0]]

    def energy(self) -> np.ndarray:
        """Each frame's summed mel power (float32, one value per frame), a piece at a time."""
        out = np.empty(self.n_frames, np.float32)
        for f0 in range(0, self.n_frames, self.piece):
            out[f0:f0 + self.piece] = self.compute(f0, f0 + self.piece).sum(axis=1)
        return out


def mel_frames(samples: np.ndarray | AudioFile, rate: int, piece: int = MEL_PIECE_FRAMES) -> np.ndarray:
    """The whole mel spectrogram (frames, 40) as one array, computed ``piece`` frames at a time."""
    mel = Mel(samples, rate, piece)
    out = np.empty((len(mel), MEL_BANDS), np.float32)
    for f0 in range(0, len(mel), piece):
        out[f0:f0 + piece] = mel.compute(f0, f0 + piece)
    return out


def embed_windows(encoder: Any, mel: Mel | np.ndarray, windows: Sequence[tuple[int, int]],
                  batch: int = 256) -> np.ndarray:
    """Unit embeddings (N, 256) of mel frame windows [a, b), in order; windows run in batches.

    ``mel`` is a :class:`Mel` (frames computed a piece at a time as the windows advance, each
    piece only as long as the windows ahead need) or the whole spectrogram as an array. Full
    windows go ``batch`` at a time; shorter ones (a region under 1.6 s) are batched with others of
    the same length (the encoder's LSTM reads whole sequences, so no padding: the same result as
    one call each, in far fewer calls).
    """
    import torch

    is_mel = isinstance(mel, Mel)
    piece = mel.piece if is_mel else 0
    out = np.zeros((len(windows), 256), np.float32)
    groups: dict[int, tuple[list[int], list[np.ndarray]]] = {}  # frames of windows waiting, by length
    held = 0  # windows waiting in groups

    def run(length: int) -> None:
        idx, stacked = groups.pop(length, ([], []))
        if idx:
            out[idx] = encoder(torch.from_numpy(np.stack(stacked))).cpu().numpy()

    with torch.inference_mode():
        for i, (a, b) in enumerate(windows):
            if is_mel:
                until = b  # a new piece runs to the end of the windows ahead that fit in it
                if not mel.holds(a, b):
                    j = i + 1
                    while j < len(windows) and a <= windows[j][0] and windows[j][1] <= a + piece:
                        until, j = max(until, windows[j][1]), j + 1
                frames = np.array(mel.frames(a, b, until))  # a copy: the piece it came from may go
            else:
                frames = np.array(mel[a:b])
            idx, stacked = groups.setdefault(b - a, ([], []))
            idx.append(i)
            stacked.append(frames)
            held += 1
            if len(idx) == batch:
                held -= len(idx)
                run(b - a)
            elif held >= 4 * batch:  # bounded: short windows of many lengths are not all kept to the end
                for length in sorted(groups):
                    run(length)
                held = 0
        for length in sorted(groups):
            run(length)
    return out


# -- windows -------------------------------------------------------------------------------


def speech_regions(words: Sequence[Word], gap: float = REGION_GAP_S) -> list[tuple[float, float]]:
    regions: list[tuple[float, float]] = []
    for w in words:
        if regions and w.start - regions[-1][1] <= gap:
            regions[-1] = (regions[-1][0], max(regions[-1][1], w.end))
        else:
            regions.append((w.start, w.end))
    return regions


def split_at_silence(regions: Sequence[tuple[float, float]], energy: np.ndarray, origin: float,
                     min_gap: float = 0.25) -> list[tuple[float, float]]:
    """Regions cut wherever the audio itself is silent for ``min_gap`` s (ASR word times
    often stretch over a pause, which would put two speakers into one region)."""
    if not len(energy):
        return list(regions)
    quiet = energy < 1e-3 * max(float(np.percentile(energy, 95)), 1e-12)
    need = int(round(min_gap / FRAME_S))
    out: list[tuple[float, float]] = []
    for r0, r1 in regions:
        a = max(0, int(round((r0 - origin) / FRAME_S)))
        b = min(len(energy), int(round((r1 - origin) / FRAME_S)))
        start, run = a, 0
        for i in range(a, b):
            run = run + 1 if quiet[i] else 0
            if run == need:
                if i - need + 1 > start:
                    out.append((origin + start * FRAME_S, origin + (i - need + 1) * FRAME_S))
                start = i + 1
            elif run > need:
                start = i + 1
        if b > start:
            out.append((origin + start * FRAME_S, origin + b * FRAME_S))
    return out


def region_frames(regions: Sequence[tuple[float, float]], origin: float, n_frames: int) -> list[tuple[int, int]]:
    """Each region as mel frames [a, b) (times relative to ``origin``); those under
    ``MIN_WINDOW_FRAMES`` are dropped (too short to embed)."""
    out: list[tuple[int, int]] = []
    for r0, r1 in regions:
        a = max(0, int(round((r0 - origin) / FRAME_S)))
        b = min(n_frames, int(round((r1 - origin) / FRAME_S)))
        if b - a >= MIN_WINDOW_FRAMES:
            out.append((a, b))
    return out


def window_starts(a: int, b: int, hop: int = HOP_FRAMES) -> list[int]:
    """Starts of the windows over frames [a, b): every ``hop`` from ``a``, and one ending at ``b``
    (a region no longer than a window is one window, ``[a, b)``)."""
    if b - a <= WINDOW_FRAMES:
        return [a]
    starts = list(range(a, b - WINDOW_FRAMES + 1, hop))
    if starts[-1] != b - WINDOW_FRAMES:
        starts.append(b - WINDOW_FRAMES)
    return starts


def _windows_at(a: int, b: int, starts: Sequence[int]) -> list[tuple[int, int]]:
    return [(s, min(b, s + WINDOW_FRAMES)) for s in starts]


def region_windows(regions: Sequence[tuple[float, float]], origin: float, n_frames: int,
                   hop: int = HOP_FRAMES) -> list[tuple[int, int]]:
    """Mel-frame windows [a, b) covering each region (times relative to ``origin``), ``hop`` apart."""
    out: list[tuple[int, int]] = []
    for a, b in region_frames(regions, origin, n_frames):
        out += _windows_at(a, b, window_starts(a, b, hop))
    return out


def refine_windows(bounds: Sequence[tuple[int, int]], labels: Sequence[int], doubtful: Sequence[bool],
                   coarse_hop: int = COARSE_HOP_FRAMES, hop: int = HOP_FRAMES) -> list[tuple[int, int]]:
    """The fine-hop windows to add between coarse windows where the voice may change.

    The coarse windows are those of the regions ``bounds`` (frames, :func:`region_frames`) at
    ``coarse_hop``, in order, with their cluster ``labels`` and ``doubtful`` flags (close to another
    voice's centroid). Between two neighbouring coarse windows of one region whose labels differ
    or either of which is doubtful, every window of the fine grid (``window_starts(a, b, hop)``)
    that starts between them is added; elsewhere the region is one voice and keeps its coarse
    windows. ``coarse_hop`` is a multiple of ``hop``, so with every pair in doubt the coarse and the
    added windows are exactly the fine grid's.
    """
    if coarse_hop % hop:
        raise ValueError("the coarse hop must be a multiple of the fine one")
    out: list[tuple[int, int]] = []
    i = 0
    for a, b in bounds:
        starts = window_starts(a, b, coarse_hop)
        fine = window_starts(a, b, hop)
        for j in range(len(starts) - 1):
            k = i + j
            if labels[k] != labels[k + 1] or doubtful[k] or doubtful[k + 1]:
                lo, hi = bisect_right(fine, starts[j]), bisect_left(fine, starts[j + 1])
                out += _windows_at(a, b, fine[lo:hi])
        i += len(starts)
    if i != len(labels):
        raise ValueError("labels are not those of the regions' coarse windows")
    return out


# -- clustering ----------------------------------------------------------------------------


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)


def spherical_kmeans(x: np.ndarray, k: int, seed: int = 0, n_init: int = 6,
                     iters: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Labels and unit centroids maximising total cosine similarity (k-means++ starts)."""
    rng = np.random.default_rng(seed)
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for _ in range(n_init):
        cents = [x[rng.integers(len(x))]]
        for _ in range(1, k):
            d = np.clip(1.0 - np.max(x @ np.stack(cents).T, axis=1), 0.0, None) ** 2
            p = d / d.sum() if d.sum() > 0 else None
            cents.append(x[rng.choice(len(x), p=p)])
        c = np.stack(cents)
        labels = np.zeros(len(x), np.int64)
        for it in range(iters):
            new = np.argmax(x @ c.T, axis=1)
            if it and np.array_equal(new, labels):
                break
            labels = new
            for j in range(k):
                members = x[labels == j]
                c[j] = _normalise(members.sum(0)) if len(members) else x[rng.integers(len(x))]
        score = float(np.sum(np.max(x @ c.T, axis=1)))
        if best is None or score > best[0]:
            best = (score, labels.copy(), c.copy())
    assert best is not None
    return best[1], best[2]


def silhouette(x: np.ndarray, labels: np.ndarray, max_n: int = 2000, seed: int = 0) -> float:
    """Mean silhouette on cosine distance (a seeded subsample past ``max_n`` points)."""
    if len(set(labels.tolist())) < 2:
        return 0.0
    if len(x) > max_n:
        idx = np.random.default_rng(seed).choice(len(x), max_n, replace=False)
        x, labels = x[idx], labels[idx]
    d = 1.0 - x @ x.T
    ks = np.unique(labels)
    mean_to = np.stack([d[:, labels == k].mean(axis=1) for k in ks], axis=1)  # (n, k)
    own = np.searchsorted(ks, labels)
    counts = np.array([(labels == k).sum() for k in ks])
    a = mean_to[np.arange(len(x)), own] * counts[own] / np.maximum(counts[own] - 1, 1)
    mean_to[np.arange(len(x)), own] = np.inf
    b = mean_to.min(axis=1)
    s = (b - a) / np.maximum(np.maximum(a, b), 1e-9)
    s[counts[own] == 1] = 0.0
    return float(s.mean())


def estimate_speakers(x: np.ndarray, speech_s: float,
                      max_speakers: int = MAX_SPEAKERS) -> tuple[np.ndarray, np.ndarray, float]:
    """(labels, centroids, silhouette) with the number of speakers chosen from the data.

    ``speech_s`` is the speech the windows cover. A split is a real second (third, ...)
    voice only when its silhouette reaches ``MIN_SILHOUETTE``, every cluster holds at
    least ``MIN_SPEAKER_S`` of speech, no two centroids are as alike as ``SAME_VOICE_COS``,
    and each added speaker raises the silhouette by
    ``SILHOUETTE_STEP`` (GE2E windows of one noisy voice also split, but into small,
    barely better-separated parts).
    """
    one = (np.zeros(len(x), np.int64), _normalise(x.sum(0, keepdims=True)), 0.0)
    if len(x) < 6:
        return one
    best = one
    for k in range(2, min(max_speakers, len(x) // 3) + 1):
        labels, cents = spherical_kmeans(x, k)
        labels, cents = _fold_small(x, labels, cents)
        if len(cents) < k:
            break  # a cluster was only stray windows: no support for k voices
        shares = np.bincount(labels, minlength=k) / len(labels)
        if shares.min() * speech_s < MIN_SPEAKER_S:
            break
        sims = cents @ cents.T
        np.fill_diagonal(sims, -1.0)
        if sims.max() >= SAME_VOICE_COS:
            break
        sil = silhouette(x, labels)
        need = MIN_SILHOUETTE if best[2] == 0.0 else best[2] + SILHOUETTE_STEP
        if sil < need:
            break
        best = (labels, cents, sil)
    return best


def refit_centroids(x: np.ndarray, cents: np.ndarray, iters: int = 20) -> np.ndarray:
    """Spherical k-means steps from ``cents`` over ``x`` (the number of voices kept)."""
    c = cents.copy()
    labels = np.argmax(x @ c.T, axis=1)
    for _ in range(iters):
        for j in range(len(c)):
            members = x[labels == j]
            if len(members):
                c[j] = _normalise(members.sum(0))
        new = np.argmax(x @ c.T, axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
    return c


def _fold_small(x: np.ndarray, labels: np.ndarray, cents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    share = np.bincount(labels, minlength=len(cents)) / len(labels)
    keep = np.nonzero(share >= MIN_CLUSTER_SHARE)[0]
    if len(keep) == len(cents):
        return labels, cents
    c = cents[keep]
    labels = np.argmax(x @ c.T, axis=1)
    c = np.stack([_normalise(x[labels == j].sum(0)) for j in range(len(c))])
    return labels, c


# -- words and turns -----------------------------------------------------------------------


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


def margins(x: np.ndarray, labels: np.ndarray, cents: np.ndarray) -> np.ndarray:
    """Each window's cosine to its own centroid less its best cosine to another (inf with one voice)."""
    sims = x @ cents.T
    if sims.shape[1] < 2:
        return np.full(len(x), np.inf)
    own = sims[np.arange(len(x)), labels]
    sims[np.arange(len(x)), labels] = -np.inf
    return own - sims.max(axis=1)


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
            self._encoder, self._why_not = load_voice_encoder()
            if self._why_not:
                ctx.log.warning(self._why_not)
            else:  # librosa compiles its mel code on first use (~7 s): pay that at load, not in a job
                try:
                    noise = np.random.default_rng(0).standard_normal(16_000).astype(np.float32) * 0.01
                    mel_frames(noise, 16_000)
                except Exception as exc:  # a warm-up only: the job's own call reports real trouble
                    ctx.log.warning("speaker model warm-up failed: %s", exc)

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
