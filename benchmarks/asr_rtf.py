"""ASR speed and accuracy: TranscribeStage on the talk's ~70 s of speech.

Real-time factor = transcription wall time / audio duration (lower is faster; 0.1 means
ten times faster than real time). Model load is timed separately (a worker loads it once).
Word error rate is computed against truth.json's sentences after a small normaliser
(case, punctuation, numbers written as words, British -> American spelling of the few
words in the script), with our own word-level Levenshtein alignment (no extra package).

    python -m benchmarks.asr_rtf [--quick] [--reps N]
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import (
    TALK,
    Recorder,
    bench_settings,
    cpu_seconds,
    harness_main,
    machine_line,
    md_table,
    median,
    stage_context,
    timed,
    truth,
)

NAME = "asr_rtf"

# -- text normalisation ------------------------------------------------------------------------

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SPELLING = {
    "favourite": "favorite",
    "litres": "liters",
    "litre": "liter",
    "colour": "color",
    "okay": "ok",
}


def number_words(n: int) -> str:
    """0 <= n < 1e9 in words, without 'and' (Whisper and our scripts both omit it)."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for size, name in ((1_000_000, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            rest = n % size
            return f"{number_words(n // size)} {name}" + (
                "" if rest == 0 else " " + number_words(rest)
            )
    raise ValueError(n)


def normalise(text: str) -> list[str]:
    """Lower-case words, punctuation dropped, digits spelled out ("90%" -> ninety percent)."""
    text = text.lower().replace("%", " percent ").replace("-", " ")
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)  # 1,000 -> 1000
    text = re.sub(r"\d+", lambda m: f" {number_words(int(m.group()))} ", text)
    text = re.sub(r"[^a-z' ]+", " ", text).replace("'", "")
    return [_SPELLING.get(w, w) for w in text.split()]


def align(ref: list[str], hyp: list[str]) -> tuple[dict[str, int], list[int | None]]:
    """Word-level edit counts and, per reference word, the index of the matching hyp word."""
    n, m = len(ref), len(hyp)
    d = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        d[i][0] = i
    for j in range(m + 1):
        d[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost = 0 if ref[i - 1] == hyp[j - 1] else 1
            d[i][j] = min(d[i - 1][j - 1] + cost, d[i - 1][j] + 1, d[i][j - 1] + 1)
    counts = {"substitutions": 0, "deletions": 0, "insertions": 0, "hits": 0}
    match: list[int | None] = [None] * n
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and d[i][j] == d[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            if ref[i - 1] == hyp[j - 1]:
                counts["hits"] += 1
                match[i - 1] = j - 1
            else:
                counts["substitutions"] += 1
            i, j = i - 1, j - 1
        elif i > 0 and d[i][j] == d[i - 1][j] + 1:
            counts["deletions"] += 1
            i -= 1
        else:
            counts["insertions"] += 1
            j -= 1
    return counts, match


def score(sentences: list[dict[str, Any]], words: list[Any]) -> dict[str, Any]:
    """WER over the whole talk, and how far each sentence's first word starts from the truth."""
    ref: list[str] = []
    first_of: list[tuple[int, float]] = []  # (ref index of a sentence's first word, truth start)
    for s in sentences:
        toks = normalise(s["text"])
        first_of.append((len(ref), float(s["start"])))
        ref += toks
    hyp: list[str] = []
    hyp_start: list[float] = []
    for w in words:
        for tok in normalise(w.text):
            hyp.append(tok)
            hyp_start.append(w.start)
    counts, match = align(ref, hyp)
    errors = counts["substitutions"] + counts["deletions"] + counts["insertions"]
    onset = [abs(hyp_start[j] - t) for i, t in first_of if (j := match[i]) is not None]
    return {
        "wer": errors / max(len(ref), 1),
        "ref_words": len(ref),
        "hyp_words": len(hyp),
        **counts,
        "sentence_onset_error_median_s": median(onset),
        "sentence_onset_error_max_s": max(onset) if onset else float("nan"),
        "sentences_with_matched_onset": len(onset),
        "sentences": len(sentences),
    }


# -- the benchmark -------------------------------------------------------------------------------


def _pipelines(settings: Any) -> dict[str, Any]:
    """The two ways the stage can decode: faster-whisper's batched pipeline (16 segments at once) and its
    sequential one (the CPU default, Settings.whisper_batch = -1)."""
    from dataclasses import replace

    return {"batched": replace(settings, whisper_batch=16), "sequential": replace(settings, whisper_batch=0)}


def run(quick: bool = False, reps: int | None = None) -> dict[str, Any]:
    from stages.media import AudioRequest, AudioStage, probe_media
    from stages.speech import TranscribeRequest, TranscribeStage, resolve_model

    reps = reps or (1 if quick else 3)
    settings = bench_settings()
    rec = Recorder(
        NAME,
        quick,
        {
            "reps": reps,
            "source": TALK.name,
            "model": resolve_model("")[0] if not settings.whisper_model else settings.whisper_model,
            "compute_type": settings.whisper_compute_type,
            "threads": settings.cpu_threads,
            "whisper_batch": settings.whisper_batch,
        },
    )
    per: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="clipora-bench-asr-") as tmp:
        ctx = stage_context(Path(tmp), settings)
        media = probe_media(TALK)
        audio_s, analysis = timed(
            lambda: AudioStage().process(AudioRequest(media, 0.0, media.duration), ctx)
        )
        duration = analysis.audio.duration
        loads = []
        stages: dict[str, Any] = {}
        for _ in range(2):  # the first load may read the model from disk, the second from page cache
            stage = TranscribeStage()
            loads.append(timed(lambda stage=stage: stage.setup(ctx))[0])
        for name, s in _pipelines(settings).items():
            stages[name] = TranscribeStage()
            stages[name].setup(stage_context(Path(tmp), s))
        for rep in range(reps):  # interleaved: the machine's load falls on both alike
            for name, stage in stages.items():
                print(f"[{NAME}] {name} run {rep + 1}/{reps}", file=sys.stderr, flush=True)
                got = per.setdefault(name, {"walls": [], "cpus": []})
                c0 = cpu_seconds()
                request = TranscribeRequest(analysis.audio)
                wall, got["transcript"] = timed(lambda stage=stage, request=request: stage.process(request, ctx))
                got["walls"].append(wall)
                got["cpus"].append(cpu_seconds() - c0)
    results: dict[str, Any] = {"audio_duration_s": duration, "audio_decode_s": audio_s, "model_load_s": loads,
                               "model_load_over_audio": loads[-1] / duration}
    for name, got in per.items():
        quality = score(truth()[TALK.name]["sentences"], list(got["transcript"].words))
        results[name] = {
            "transcribe_s": got["walls"],
            "transcribe_cpu_s": got["cpus"],
            "rtf_median": median(got["walls"]) / duration,
            "rtf_cpu_median": median(got["cpus"]) / duration,
            **quality,
            "transcript": " ".join(w.text for w in got["transcript"].words),
        }
    results["batched_speedup"] = results["sequential"]["rtf_median"] / results["batched"]["rtf_median"]
    return rec.save(
        results,
        [
            "RTF = wall time of TranscribeStage.process (VAD + Whisper + word "
            "timestamps, beam 1) / audio duration; model load excluded. 'batched' is faster-whisper's "
            "BatchedInferencePipeline (16 segments at once: whisper_batch=16, the cuda backend's default); "
            "'sequential' its WhisperModel.transcribe (the CPU default); runs interleaved.",
        ],
    )


def table(data: dict[str, Any]) -> str:
    r = data["results"]
    if "batched" not in r and "sequential" not in r:  # from before the batched pipeline: sequential only
        r = {**r, "sequential": r}
    names = [n for n in ("batched", "sequential") if n in r]

    def row(label: str, fmt: Any) -> tuple[str, ...]:
        return (label, *(fmt(r[n]) for n in names))

    rows = [
        ("audio", *(f"{r['audio_duration_s']:.1f} s of espeak-ng speech, 2 voices" for _ in names)),
        row("real-time factor (wall, median)", lambda x: f"**{x['rtf_median']:.3f}** ({1 / x['rtf_median']:.1f}x "
                                                         "real time)"),
        row("real-time factor (CPU seconds)", lambda x: f"{x['rtf_cpu_median']:.3f}"),
        ("model load (cold, warm)", *(" / ".join(f"{v:.2f} s" for v in r["model_load_s"]) for _ in names)),
        row("WER", lambda x: f"**{x['wer'] * 100:.1f} %** ({x['substitutions']} sub, {x['deletions']} del, "
                             f"{x['insertions']} ins of {x['ref_words']} words)"),
        row("sentence onset error (median / max)",
            lambda x: f"{x['sentence_onset_error_median_s'] * 1000:.0f} ms / "
                      f"{x['sentence_onset_error_max_s'] * 1000:.0f} ms"
                      f" ({x['sentences_with_matched_onset']} of {x['sentences']} sentences)"),
    ]
    head = ("measure", *(f"{n} pipeline" + (" (the CPU default)" if n == "sequential" else "") for n in names))
    extra = f"\n\nBatched vs sequential: **{r['batched_speedup']:.2f}x** faster." if "batched_speedup" in r else ""
    return md_table(head, rows) + extra + "\n\n" + machine_line(data)


def main(argv: list[str] | None = None) -> None:
    harness_main(__doc__, run, table, argv, ("--reps", int))


if __name__ == "__main__":
    main()
