"""Diarization cost per hour of speech, and its accuracy on real recordings, before and after.

``DiarizeStage``'s work (``stages.speech.diarize.diarize``, the encoder loaded before, as a warm
worker has it) on the analysis audio of the talk looped to 10 and 60 minutes (2 and 10 with
``--quick``), made by the audio stage as in a job. The words are one transcription of the 69 s
talk by the job's own transcribe stage, repeated every loop period (measured on the looped
audio; transcribing 60 minutes would take most of the run and give the same words again). The
same command times that transcription, the reference: diarization is reported per hour of
speech (the words' regions, as the stage counts them), against the audio duration and against
the transcription's cost per hour. Figures are the fastest of interleaved runs.

Variants, each on the same audio and words, interleaved:

* ``baseline``: ``stages/speech/diarize.py`` as of ``BASELINE_COMMIT`` (read with ``git show``;
  every window at the 0.4 s hop, one encoder call per short window), when git has it;
* ``fine``: today's code with ``coarse_hop=HOP_FRAMES`` (one pass at the fine hop, batched);
* ``two-pass``: today's default (a 1.6 s coarse pass, fine windows only where the voice may change).

The parts (mel, encoder, clustering, labelling) are timed by wrapping the module's functions and
the encoder from outside, so the baseline is timed the same way. Accuracy: the share of words
labelled right (speakers mapped one to one: ``common.speaker_accuracy``, the tests' score too) on
the talk's two espeak voices (truth.json) and on pyannote's real recordings against their RTTM
(words from our ASR; overlapped speech skipped), plus the speakers found on jfk.wav (one) and
stereo_two_speakers.wav (two at once, mixed to mono), when ../shared/media has them. The real
recordings are also looped (``looped xN``: every window recurs N times) to be long enough for the
two passes: a stress case for the speaker count, not a real long recording.

    python -m benchmarks.diarize_cost [--quick] [--reps N]
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    ROOT,
    TALK,
    Recorder,
    bench_settings,
    harness_main,
    looped_source,
    machine_line,
    md_table,
    rttm_truth,
    rttm_turns,
    speaker_accuracy,
    stage_context,
    truth,
)

NAME = "diarize_cost"
#: the last commit of stages/speech/diarize.py before the two-pass windows
BASELINE_COMMIT = "f74ad8a4063f6c84f677b6ae26e55ddd429a419a"
SHARED_MEDIA = ROOT.parent / "shared" / "media"
PARTS = ("mel", "encoder", "cluster", "label")


# -- the variants --------------------------------------------------------------------------------


def baseline_module() -> Any | None:
    """diarize.py at BASELINE_COMMIT as a module of its own (None where git cannot show it)."""
    try:
        code = subprocess.run(["git", "show", f"{BASELINE_COMMIT}:stages/speech/diarize.py"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    mod = types.ModuleType("diarize_baseline")
    mod.__file__ = f"diarize.py@{BASELINE_COMMIT}"
    sys.modules[mod.__name__] = mod  # dataclasses look their module up
    exec(compile(code, mod.__file__, "exec"), mod.__dict__)
    return mod


class Clock:
    """Wall and CPU seconds per part, accumulated by wrappers around a module's functions."""

    def __init__(self) -> None:
        self.wall = dict.fromkeys(PARTS, 0.0)
        self.cpu = dict.fromkeys(PARTS, 0.0)
        self.windows = 0
        self.calls = 0

    def wrap(self, part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed_call(*args: Any, **kwargs: Any) -> Any:
            t, c = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.wall[part] += time.perf_counter() - t
                self.cpu[part] += time.process_time() - c

        return timed_call


class CountingEncoder:
    """The encoder, counted and timed (windows per call, calls, seconds)."""

    def __init__(self, encoder: Any, clock: Clock) -> None:
        self.encoder, self.clock = encoder, clock
        self._call = clock.wrap("encoder", encoder)

    def __call__(self, mels: Any) -> Any:
        self.clock.windows += int(mels.shape[0])
        self.clock.calls += 1
        return self._call(mels)


def run_variant(mod: Any, encoder: Any, samples: Any, words: Sequence[Any],
                kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """One diarization with the parts timed: (result, measurements)."""
    clock = Clock()
    saved = {name: getattr(mod, name) for name in ("estimate_speakers", "label_words", "smooth_labels")}
    compute = mod.Mel.compute
    mod.estimate_speakers = clock.wrap("cluster", saved["estimate_speakers"])
    mod.label_words = clock.wrap("label", saved["label_words"])
    mod.smooth_labels = clock.wrap("label", saved["smooth_labels"])
    mod.Mel.compute = clock.wrap("mel", compute)
    try:
        t, c = time.perf_counter(), time.process_time()
        result = mod.diarize(CountingEncoder(encoder, clock), samples, 16_000, 0.0, words, **kwargs)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
    finally:
        for name, fn in saved.items():
            setattr(mod, name, fn)
        mod.Mel.compute = compute
    other = max(0.0, wall - sum(clock.wall.values()))
    return result, {
        "wall_s": wall, "cpu_s": cpu, "windows": clock.windows, "encoder_calls": clock.calls,
        "part_wall_s": {**clock.wall, "other": other}, "part_cpu_s": dict(clock.cpu),
        "speakers": len(result.speakers), "turns": len(result.turns), "quality": result.quality,
    }


# -- inputs --------------------------------------------------------------------------------------


def talk_voices(words: Sequence[Any], period: float) -> list[str]:
    """Each word's true voice on the (looped) talk: the sentence its middle falls in ("" between)."""
    sentences = truth()[TALK.name]["sentences"]
    out = []
    for w in words:
        mid = ((w.start + w.end) / 2) % period
        out.append(next((s["voice"] for s in sentences if s["start"] - 0.2 <= mid < s["end"] + 0.2), ""))
    return out


def repeat_words(words: Sequence[Any], period: float, until: float) -> list[Any]:
    from engine.types import Word

    out: list[Any] = []
    offset = 0.0
    while offset < until:
        out += [Word(round(w.start + offset, 3), round(w.end + offset, 3), w.text, w.probability)
                for w in words if w.end + offset <= until]
        offset += period
    return out


def loop_period(looped: Any, once: np.ndarray, nominal: float, search: float = 0.3) -> float:
    """The looped source's true period, s: where a stretch of the talk recurs near ``nominal``.

    A stream-copy loop repeats whole AAC packets, priming included (69.397 s for the 69.36 s talk),
    so words repeated every ``nominal`` seconds drift off the audio by ~2 s over an hour."""
    from scipy.signal import correlate

    ref = np.asarray(once[5 * 16_000:10 * 16_000], np.float32)
    lo = int((5 + nominal - search) * 16_000)
    seg = np.asarray(looped[lo:lo + len(ref) + int(2 * search * 16_000)], np.float32)
    lag = int(np.argmax(correlate(seg, ref, mode="valid", method="fft")))
    return (lo + lag) / 16_000 - 5


def read_wav_16k(path: Path) -> np.ndarray:
    """A WAV (any sample format soundfile reads) as float32 mono at 16 kHz."""
    import soundfile

    x, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if rate != 16_000:
        n = int(round(len(x) * 16_000 / rate))
        x = np.interp(np.linspace(0, len(x) - 1, n), np.arange(len(x)), x).astype(np.float32)
    return x


def rttm_against(ref: Sequence[tuple[float, float, str]], words: Sequence[Any], period: float) -> list[str]:
    return rttm_truth(words, ref, period)


def transcribe_array(stage: Any, ctx: Any, x: np.ndarray, work: Path, name: str) -> tuple[list[Any], float, float]:
    """(words, wall s, CPU s) of the transcribe stage on samples ``x`` (16 kHz)."""
    from engine.types import AnalysisAudio
    from stages.speech import TranscribeRequest

    path = work / f"{name}.npy"
    np.save(path, x.astype(np.float32))
    t, c = time.perf_counter(), time.process_time()
    tr = stage.process(TranscribeRequest(AnalysisAudio(str(path), 0.0, 16_000, len(x) / 16_000)), ctx)
    return list(tr.words), time.perf_counter() - t, time.process_time() - c


# -- the benchmark -------------------------------------------------------------------------------


def run(quick: bool = False, reps: int | None = None) -> dict[str, Any]:
    from stages.media import AudioFile, AudioRequest, AudioStage, probe_media
    from stages.speech import TranscribeStage
    from stages.speech import diarize as _diarize_fn  # noqa: F401  (the package import runs first)
    from stages.speech.diarize import HOP_FRAMES, DiarizeStage

    now = sys.modules["stages.speech.diarize"]
    reps = reps or (1 if quick else 3)
    minutes = (2, 10) if quick else (10, 60)
    settings = bench_settings()
    base = baseline_module()
    variants: list[tuple[str, Any, dict[str, Any]]] = []
    if base is not None:
        variants.append(("baseline", base, {}))
    variants += [("fine", now, {"coarse_hop": HOP_FRAMES}), ("two-pass", now, {})]
    rec = Recorder(NAME, quick, {"minutes": list(minutes), "reps": reps, "baseline_commit": BASELINE_COMMIT,
                                 "variants": [v[0] for v in variants], "threads": settings.cpu_threads})
    results: dict[str, Any] = {"variants": [v[0] for v in variants]}
    with tempfile.TemporaryDirectory(prefix="clipora-bench-diarize-") as tmp:
        work = Path(tmp)
        ctx = stage_context(work, settings)
        stage = DiarizeStage()
        stage.setup(ctx)  # the encoder, and librosa's first-call compile, before any timing
        encoder = stage._encoder
        if encoder is None:
            raise RuntimeError(stage._why_not)
        asr = TranscribeStage()
        asr.setup(ctx)

        # the reference: the job's transcription of the talk, per second of audio
        media = probe_media(TALK)
        talk_audio = AudioStage().process(AudioRequest(media, 0.0, media.duration), ctx).audio
        talk_x = np.asarray(AudioFile.of(talk_audio)[0:len(AudioFile.of(talk_audio))])
        print(f"[{NAME}] transcribing the talk ({talk_audio.duration:.1f} s)", file=sys.stderr, flush=True)
        asr_runs = [transcribe_array(asr, ctx, talk_x, work, "talk") for _ in range(reps)]
        talk_words = asr_runs[0][0]
        results["transcribe"] = {
            "audio_s": talk_audio.duration, "wall_s": [r[1] for r in asr_runs], "cpu_s": [r[2] for r in asr_runs],
            "wall_per_audio_h_s": min(r[1] for r in asr_runs) / talk_audio.duration * 3600,
            "cpu_per_audio_h_s": min(r[2] for r in asr_runs) / talk_audio.duration * 3600,
            "words": len(talk_words),
        }
        period = media.duration

        # cost on the looped talk
        results["sources"] = {}
        for m in minutes:
            src = looped_source(m * 60)
            smedia = probe_media(src)
            audio = AudioStage().process(AudioRequest(smedia, 0.0, smedia.duration), ctx).audio
            samples = AudioFile.of(audio)
            loop_s = loop_period(samples, talk_x, period)
            words = repeat_words(talk_words, loop_s, audio.duration)
            speech_s = sum(b - a for a, b in now.speech_regions(words))
            ref = talk_voices(words, loop_s)
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in variants}
            for rep in range(reps if m == minutes[0] else max(1, reps - 1)):
                for name, mod, kwargs in variants:
                    print(f"[{NAME}] {m} min, {name}, run {rep + 1}", file=sys.stderr, flush=True)
                    d, meas = run_variant(mod, encoder, samples, words, kwargs)
                    meas["accuracy"] = speaker_accuracy(d.word_speakers, ref)
                    runs[name].append(meas)
            results["sources"][f"{m}min"] = {
                "minutes": m, "audio_s": audio.duration, "loop_period_s": loop_s, "speech_s": speech_s,
                "words": len(words),
                "runs": runs, "summary": {name: summarise(rs, speech_s, audio.duration, results["transcribe"])
                                          for name, rs in runs.items()},
            }

        # accuracy on real recordings (and the 69 s talk itself); looped ones (x N) are long enough
        # for the two-pass windows (a short source has every window at the fine hop)
        Case = tuple[str, np.ndarray, list[Any], Callable[[list[Any], float], list[str]] | None, float]
        cases: list[Case] = [("speech_topics (69 s, 2 espeak voices)", talk_x, talk_words,
                              lambda ws, _p: talk_voices(ws, period), 0.0)]
        for fname, uri, label, loops in (("pyannote_sample", None, "pyannote_sample (30 s, 2 people)", (1, 10)),
                                         ("pyannote_dev00", "dev00", "pyannote_dev00 (60 s, meeting)", (1, 5)),
                                         ("jfk", None, "jfk (11 s, 1 speaker)", (1, 20)),
                                         ("stereo_two_speakers", None, "stereo_two_speakers (5 s, 2 at once)", (1,))):
            wav, ref_path = SHARED_MEDIA / f"{fname}.wav", SHARED_MEDIA / f"{fname}.rttm"
            if not wav.is_file():
                continue
            x = read_wav_16k(wav)
            words = transcribe_array(asr, ctx, x, work, fname)[0]
            scorer = functools.partial(rttm_against, rttm_turns(ref_path, uri)) if ref_path.is_file() else None
            for n in loops:
                tag = label if n == 1 else f"{label} looped x{n}"
                loop_s = len(x) / 16_000
                cases.append((tag, np.tile(x, n), repeat_words(words, loop_s, n * loop_s) if n > 1 else words,
                              scorer, loop_s if n > 1 else 0.0))
        results["accuracy"] = {}
        for label, x, words, scorer, loop_s in cases:
            row: dict[str, Any] = {"words": len(words), "audio_s": len(x) / 16_000}
            for name, mod, kwargs in variants:
                d, meas = run_variant(mod, encoder, x, words, kwargs)
                row[name] = {"speakers": meas["speakers"], "quality": meas["quality"], "windows": meas["windows"],
                             "wall_s": meas["wall_s"]}
                if scorer is not None:
                    ref = scorer(words, loop_s)
                    row[name]["accuracy"] = speaker_accuracy(d.word_speakers, ref)
                    row["scored_words"] = sum(1 for r in ref if r)
            results["accuracy"][label] = row
    return rec.save(results, [
        "Words: one transcription of the 69 s talk by TranscribeStage, repeated every loop period.",
        "Per hour of speech: diarization seconds / (speech seconds / 3600); speech = the words' regions "
        "(gaps <= 0.3 s merged), what the stage embeds.",
        "vs transcription: diarization wall s per audio hour / transcription wall s per audio hour, "
        "the transcription measured on the talk in the same command.",
        "Each figure is the fastest of the interleaved runs (3 on the shorter source, 2 on the longer; "
        "all runs are in the JSON): the machine is shared, and the least disturbed run is the cost.",
        f"baseline = stages/speech/diarize.py at {BASELINE_COMMIT} (git show), run by the same code.",
    ])


def summarise(runs: Sequence[dict[str, Any]], speech_s: float, audio_s: float, asr: dict[str, Any]) -> dict[str, Any]:
    """The fastest run's figures: on a shared machine the least disturbed one (every run is in the JSON)."""
    best = min(runs, key=lambda r: r["wall_s"])
    wall, cpu = best["wall_s"], min(r["cpu_s"] for r in runs)
    parts = {k: best["part_wall_s"][k] for k in (*PARTS, "other")}
    total = sum(parts.values()) or 1.0
    return {
        "wall_per_speech_h_s": wall / speech_s * 3600, "cpu_per_speech_h_s": cpu / speech_s * 3600,
        "x_audio": wall / audio_s, "vs_transcribe": (wall / audio_s * 3600) / asr["wall_per_audio_h_s"],
        "windows": runs[0]["windows"], "encoder_calls": runs[0]["encoder_calls"],
        "windows_per_speech_min": runs[0]["windows"] / speech_s * 60,
        "share": {k: v / total for k, v in parts.items()},
        "accuracy": runs[0]["accuracy"], "speakers": runs[0]["speakers"], "quality": runs[0]["quality"],
    }


def table(data: dict[str, Any]) -> str:
    r = data["results"]
    names = r["variants"]
    tr = r["transcribe"]
    out = [f"Reference, same command: transcription of the talk {tr['wall_per_audio_h_s']:.0f} s wall "
           f"({tr['cpu_per_audio_h_s']:.0f} s CPU) per hour of audio.", ""]
    rows = []
    for key, src in r["sources"].items():
        s = src["summary"]
        tag = f"{src['minutes']} min ({src['speech_s'] / 60:.1f} min speech)"
        rows += [
            [f"{tag}: wall s per hour of speech", *(f"**{s[n]['wall_per_speech_h_s']:.0f}**" for n in names)],
            [f"{tag}: CPU s per hour of speech", *(f"{s[n]['cpu_per_speech_h_s']:.0f}" for n in names)],
            [f"{tag}: x audio duration", *(f"{s[n]['x_audio']:.4f}" for n in names)],
            [f"{tag}: vs transcription", *(f"{s[n]['vs_transcribe']:.2f}x" for n in names)],
            [f"{tag}: windows (per min of speech)",
             *(f"{s[n]['windows']} ({s[n]['windows_per_speech_min']:.0f})" for n in names)],
            [f"{tag}: encoder calls", *(str(s[n]["encoder_calls"]) for n in names)],
            [f"{tag}: mel / encoder / cluster / label / other",
             *(" / ".join(f"{100 * s[n]['share'][k]:.0f}" for k in (*PARTS, "other")) + " %" for n in names)],
            [f"{tag}: words right (2 voices)", *(f"{s[n]['accuracy']:.3f}" for n in names)],
        ]
        del key
    for label, row in r["accuracy"].items():
        def cell(n: str, row: dict[str, Any] = row) -> str:
            v = row[n]
            acc = f"{v['accuracy']:.3f}, " if "accuracy" in v else ""
            return f"{acc}{v['speakers']} spk, q {v['quality']:.2f}"
        rows.append([f"{label}: words right, speakers, silhouette", *(cell(n) for n in names)])
    out.append(md_table(["measure", *names], rows))
    out += ["", machine_line(data)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    data = harness_main(__doc__, run, table, argv, ("--reps", int))
    print(json.dumps(data["results"]["accuracy"], indent=1), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
