"""host: decide which speaker (if any) is the AI host / interviewer of an interview. Pure.

Per speaker, from the labelled words and the 16 kHz audio:

- ``share``: the speaker's part of all speech time;
- ``questions``: the fraction of the speaker's sentences that ask something (a "?" from
  the ASR, or an unterminated sentence that opens with a question word);
- ``turn_s``: median turn length, seconds;
- ``pitch_st`` / ``energy_db``: spread of F0 (semitones, robust IQR) and of loudness over
  voiced frames; ``pace_cv``: the turn-to-turn variation of words per second. A synthetic
  voice is unnaturally stable on all three, so ``synthetic`` (0-1) is their mean
  stability score.

The host is the speaker with the highest weighted score (questions, short turns, small
share, synthetic voice). The source counts as an interview when there are two or more
speakers, the genre is not a monologue (vlog, tutorial), and the host asks questions or
sounds clearly more synthetic than the others. ``confidence`` grows with the host's lead over the runner-up.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np

from engine.stage import Resources, Stage, StageContext
from engine.types import AnalysisAudio, Diarization, HostDecision, SpeakerTurn, Transcript, Word
from stages.media import AudioFile, AudioSpan

QUESTION_OPENERS = frozenset(
    "what why how when where who which whom whose do does did is are was were can could would "
    "should will have has tell so".split()
)
MIN_CONFIDENCE = 0.6  # below this, nothing is removed
WEIGHTS = {"questions": 2.0, "short_turns": 0.6, "small_share": 0.8, "synthetic": 1.2}


#: frames analysed at once by pitch_track: its memory is bounded by this times the chunks running at
#: once, not by the turn's length (1024 frames of 640 samples: ~30 MB of frames, spectra and
#: autocorrelations per chunk; the host stage runs as many chunks at once as it has threads)
PITCH_CHUNK_FRAMES = 1024

#: (lag, autocorrelation peak, energy) of each frame of one chunk
_FramePitch = tuple[np.ndarray, np.ndarray, np.ndarray]


def _chunk_pitch(x: np.ndarray | AudioSpan, a: int, b: int, hop: int, win: int, lo: int, hi: int) -> _FramePitch:
    """Frames [a, b) of ``x``: their samples are sliced (read from disk for an AudioSpan) only here.
    numpy's FFTs let go of the GIL, so chunks on different threads run on different cores."""
    piece = np.asarray(x[a * hop:(b - 1) * hop + win])
    idx = np.arange(win)[None, :] + hop * np.arange(b - a)[:, None]
    frames = piece[idx].astype(np.float64)
    frames -= frames.mean(axis=1, keepdims=True)
    spec = np.fft.rfft(frames * np.hanning(win), n=2 * win)
    ac = np.fft.irfft(np.abs(spec) ** 2)[:, :win]
    ac /= np.maximum(ac[:, :1], 1e-12)
    lag = lo + np.argmax(ac[:, lo:hi], axis=1)
    return lag, ac[np.arange(b - a), lag], np.sqrt(np.mean(frames ** 2, axis=1))


def pitch_track(x: np.ndarray | AudioSpan, rate: int = 16_000, hop: int = 160, win: int = 640,
                fmin: float = 70.0, fmax: float = 400.0, chunk: int = PITCH_CHUNK_FRAMES,
                pool: Executor | None = None) -> np.ndarray:
    """F0 (Hz) per hop-spaced frame by normalised autocorrelation; 0 where unvoiced.

    Frames are analysed ``chunk`` at a time (each frame on its own, so chunking changes no
    value), each chunk's samples sliced from ``x`` as it comes (an array, or an AudioSpan read
    from disk), on ``pool``'s threads where one is given; only three numbers per frame are kept
    until the end, where the energy gate is taken against the loudest frame of the whole input.
    """
    if len(x) < win:
        return np.zeros(0)
    n = 1 + (len(x) - win) // hop
    lo, hi = int(rate / fmax), int(rate / fmin)
    ranges = [(a, min(n, a + chunk)) for a in range(0, n, chunk)]
    if pool is None or len(ranges) == 1:
        parts = [_chunk_pitch(x, a, b, hop, win, lo, hi) for a, b in ranges]
    else:
        parts = [f.result() for f in [pool.submit(_chunk_pitch, x, a, b, hop, win, lo, hi) for a, b in ranges]]
    lag, peak, energy = (np.concatenate(v) for v in zip(*parts, strict=True))
    voiced = (peak > 0.45) & (energy > 0.01 * max(float(energy.max()), 1e-9))
    return np.where(voiced, rate / lag, 0.0)


def _iqr(v: np.ndarray) -> float:
    if len(v) < 4:
        return 0.0
    q1, q3 = np.percentile(v, [25, 75])
    return float((q3 - q1) / 1.349)


def sentences(words: Sequence[Word]) -> list[list[Word]]:
    """Words split after each . ? ! (the ASR's punctuation)."""
    out: list[list[Word]] = [[]]
    for w in words:
        out[-1].append(w)
        if w.text.rstrip().endswith((".", "?", "!")):
            out.append([])
    return [s for s in out if s]


def _asks(sentence: Sequence[Word]) -> bool:
    if sentence[-1].text.rstrip().endswith("?"):
        return True
    first = re.sub(r"[^a-z']", "", sentence[0].text.lower())
    return first in QUESTION_OPENERS and not sentence[-1].text.rstrip().endswith((".", "!"))


def _stability(value: float, stable: float, natural: float) -> float:
    """1 at or below ``stable``, 0 at or above ``natural``, linear between."""
    return float(np.clip((natural - value) / (natural - stable), 0.0, 1.0))


def _levels_db(seg: np.ndarray | AudioSpan, block: int = 320, piece: int = 320 * 3000) -> np.ndarray:
    """Level (dBFS) of each whole ``block`` of samples, read ``piece`` samples at a time."""
    n = len(seg) // block
    out = np.empty(n)
    for a in range(0, n * block, piece):
        x = np.asarray(seg[a:min(a + piece, n * block)]).astype(np.float64)
        rms = np.sqrt(np.mean(x.reshape(-1, block) ** 2, axis=1))
        out[a // block:a // block + len(rms)] = 20 * np.log10(np.maximum(rms, 1e-6))
    return out


def _turn_voice(seg: np.ndarray | AudioSpan, rate: int, pool: Executor | None = None
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """A turn's pitch track and its block levels (None when it is shorter than one pitch frame)."""
    return pitch_track(seg, rate, pool=pool), _levels_db(seg) if len(seg) >= 640 else None


def _turn_voices(turns: Sequence[SpeakerTurn], samples: np.ndarray | AudioFile, origin: float, rate: int,
                 pool: Executor | None) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """:func:`_turn_voice` of each turn, in order. With a pool, short turns run side by side, one task
    each; a turn of more than one pitch chunk (a monologue is one turn) spreads its chunks over the
    pool instead, from this thread, so no task waits on another."""
    pending: list[Future[tuple[np.ndarray, np.ndarray | None]] | tuple[np.ndarray, np.ndarray | None]] = []
    for t in turns:
        lo, hi = max(0, int((t.start - origin) * rate)), max(0, int((t.end - origin) * rate))
        seg = samples.span(lo, hi) if isinstance(samples, AudioFile) else samples[lo:hi]
        if pool is None:
            yield _turn_voice(seg, rate)
        elif len(seg) > PITCH_CHUNK_FRAMES * 160:
            pending.append(_turn_voice(seg, rate, pool))
        else:
            pending.append(pool.submit(_turn_voice, seg, rate))
    for p in pending:
        yield p.result() if isinstance(p, Future) else p


def speaker_features(words: Sequence[Word], turns: Sequence[SpeakerTurn], samples: np.ndarray | AudioFile | None,
                     origin: float, rate: int = 16_000, pool: Executor | None = None) -> dict[str, dict[str, float]]:
    """Each speaker's features (the module's docstring); the turns' audio analysed on ``pool`` where given."""
    total = sum(w.end - w.start for w in words) or 1.0
    words = sorted(words, key=lambda w: w.start)  # ASR order; each turn's words found by bisection
    starts = [w.start for w in words]
    out: dict[str, dict[str, float]] = {}
    for spk in sorted({t.speaker for t in turns}):
        mine = [t for t in turns if t.speaker == spk]
        turn_words = [[w for w in words[bisect.bisect_left(starts, t.start):bisect.bisect_right(starts, t.end)]
                       if w.speaker == spk and w.end <= t.end] for t in mine]
        spoken = sum(w.end - w.start for tw in turn_words for w in tw)
        rates = [len(tw) / max(t.end - t.start, 0.3) for t, tw in zip(mine, turn_words, strict=True) if len(tw) >= 3]
        f0: list[np.ndarray] = []
        db: list[np.ndarray] = []
        if samples is not None:
            for p, level in _turn_voices(mine, samples, origin, rate, pool):
                f0.append(p[p > 0])
                if level is not None:
                    db.append(level[level > level.max() - 25])
        f0_all = np.concatenate(f0) if f0 else np.zeros(0)
        pitch_st = _iqr(12 * np.log2(f0_all / np.median(f0_all))) if len(f0_all) >= 20 else 0.0
        energy_db = _iqr(np.concatenate(db)) if db else 0.0
        pace_cv = float(np.std(rates) / np.mean(rates)) if len(rates) >= 2 else 0.0
        stab = [_stability(pitch_st, 1.5, 3.5)]
        if db:
            stab.append(_stability(energy_db, 4.0, 8.0))
        if len(rates) >= 2:
            stab.append(_stability(pace_cv, 0.05, 0.2))
        sents = [s for tw in turn_words for s in sentences(tw)]
        out[spk] = {
            "share": round(float(spoken / total), 3),
            "questions": round(sum(_asks(s) for s in sents) / max(len(sents), 1), 3),
            "turn_s": round(float(np.median([t.end - t.start for t in mine])), 2),
            "turns": float(len(mine)),
            "pitch_st": round(float(pitch_st), 2),
            "energy_db": round(energy_db, 2),
            "pace_cv": round(pace_cv, 3),
            "synthetic": round(float(np.mean(stab)), 3) if len(f0_all) >= 20 else 0.0,
        }
    return out


#: a host found by its voice alone (it does not mainly ask questions) needs voices this well told
#: apart (the diarizer's silhouette). Measured: two real or espeak speakers 0.29-0.38; one espeak
#: voice split in two 0.24-0.27, whose halves can differ in synthetic score (0.65 vs 0.20), which
#: would splice half of a single TTS narration out.
MIN_VOICE_SEPARATION = 0.28


def decide_host(features: dict[str, dict[str, float]], genre: str = "auto",
                separation: float | None = None) -> HostDecision:
    """``separation``: the diarizer's silhouette (None: not known, not checked)."""
    if len(features) < 2:
        return HostDecision(False, None, 0.0, 0.0, features, "fewer than two speakers")
    longest = max(f["turn_s"] for f in features.values()) or 1.0
    scores = {
        s: WEIGHTS["questions"] * f["questions"]
        + WEIGHTS["short_turns"] * (1.0 - f["turn_s"] / longest)
        + WEIGHTS["small_share"] * (1.0 - f["share"])
        + WEIGHTS["synthetic"] * f["synthetic"]
        for s, f in features.items()
    }
    ranked = sorted(scores, key=lambda s: -scores[s])
    host, runner = ranked[0], ranked[1]
    f = features[host]
    margin = scores[host] - scores[runner]
    confidence = round(float(np.clip(0.5 + margin / 2.0, 0.0, 1.0)), 3)
    if len(features) > 2:  # a third voice makes "the" host less certain
        confidence = round(confidence * 0.85, 3)
    if genre in ("vlog", "tutorial"):
        return HostDecision(False, None, 0.0, f["synthetic"], features, f"genre {genre} is not an interview")
    synthetic_lead = f["synthetic"] - max(g["synthetic"] for s, g in features.items() if s != host)
    if f["questions"] < 0.5 and not (f["synthetic"] >= 0.6 and synthetic_lead >= 0.25):
        return HostDecision(False, None, 0.0, f["synthetic"], features,
                            "no speaker mainly asks questions or sounds synthetic")
    if f["questions"] < 0.5 and separation is not None and separation < MIN_VOICE_SEPARATION:
        return HostDecision(False, None, 0.0, f["synthetic"], features,
                            f"{host} sounds synthetic but asks no questions, and the voices are not clearly "
                            f"apart (separation {separation:.2f} < {MIN_VOICE_SEPARATION}): maybe one voice")
    reason = (f"{host} asks in {f['questions']:.0%} of sentences, has {f['share']:.0%} of the talk, "
              f"median turn {f['turn_s']:.1f} s, synthetic-voice score {f['synthetic']:.2f}")
    return HostDecision(True, host, confidence, f["synthetic"], features, reason)


@dataclass(frozen=True)
class HostRequest:
    audio: AnalysisAudio | None
    transcript: Transcript  # words labelled with speakers
    diarization: Diarization
    genre: str


class HostStage(Stage[HostRequest, HostDecision]):
    name = "host"
    resources = Resources(cpus=2.0)  # the turns' pitch tracks on Settings.threads cores

    def process(self, inputs: HostRequest, ctx: StageContext) -> HostDecision:
        if not inputs.diarization.available:
            ctx.progress(1.0, "no speaker turns")
            return HostDecision(False, None, 0.0, 0.0, {}, "speaker diarization unavailable")
        # one voice is never an interview (decide_host): its turns' pitch and levels are not analysed
        # (the stage's main cost, which grows with the speech)
        voices = len({t.speaker for t in inputs.diarization.turns}) >= 2
        samples = AudioFile.of(inputs.audio) if inputs.audio is not None and voices else None
        origin = inputs.audio.start if inputs.audio is not None else 0.0
        threads = max(1, ctx.settings.cpu_threads) if voices else 1
        with ThreadPoolExecutor(threads, thread_name_prefix="clipora-host") if threads > 1 else nullcontext() as pool:
            feats = speaker_features(inputs.transcript.words, inputs.diarization.turns, samples, origin, pool=pool)
        decision = decide_host(feats, inputs.genre, inputs.diarization.quality)
        ctx.progress(1.0, f"host {decision.host or 'none'} ({decision.confidence:.2f})")
        return decision
