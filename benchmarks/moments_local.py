"""The local moment scorer on a 60-minute transcript: how long mode ai takes without a model server.

The transcript is the talk's ground-truth sentences (truth.json) looped to 60 minutes,
each repetition made distinct ("... in week 12") so the embedding cache cannot hide the
work; the audio features are synthetic (one value per 50 ms). Three cases, each in a fresh
scorer with the sentence-embedding cache cleared before every run:

- no prompt: hook/completeness/emotion/energy/pace/density over every candidate window;
- with a prompt: the same plus relevance (TF-IDF topic segments + all-MiniLM-L6-v2
  embeddings of every sentence, run with NumPy);
- embeddings only: encoding every sentence once (the largest part of the prompt case).

Reported as seconds and as source seconds per second of work (a ratio, as BENCHMARKS.md
asks on these shared CPUs). Model load is timed separately (once per process).

    python -m benchmarks.moments_local [--quick] [--reps N]
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks.common import Recorder, cpu_seconds, harness_main, machine_line, md_table, median, timed, truth_words

NAME = "moments_local"


def long_transcript(seconds: float) -> Any:
    from engine.types import Transcript, Word

    base = truth_words(until=seconds)
    period = 69.36
    words: list[Word] = []
    for w in base:
        text = w.text
        if text.endswith((".", "?")):  # "... harvest." -> "... harvest in week 7."
            k = int(w.start // period)
            text = f"{text[:-1]} in week {k}{text[-1]}"
        words.append(Word(w.start, w.end, text))
    return Transcript(tuple(words), audio_duration=seconds)


def run(quick: bool = False, reps: int | None = None) -> dict[str, Any]:
    from engine.options import ProcessOptions
    from engine.types import AudioFeatures
    from stages.moments import LocalMomentScorer, MomentRequest
    from stages.moments.embeddings import shared_encoder

    seconds = 600.0 if quick else 3600.0
    reps = reps or (1 if quick else 3)
    rec = Recorder(NAME, quick, {"source_seconds": seconds, "reps": reps, "clip_length": "medium",
                                 "num_clips": 5})
    t_load, encoder = timed(shared_encoder)
    transcript = long_transcript(seconds)
    rng = np.random.default_rng(0)
    features = AudioFeatures(0.0, 0.05, tuple(float(v) for v in rng.normal(-24, 4, int(seconds / 0.05))))
    sentences = sum(w.text.endswith((".", "?", "!")) for w in transcript.words)

    def case(prompt: str) -> tuple[float, float, Any]:
        if encoder is not None:
            encoder._cache.clear()
        opts = ProcessOptions.build(clip_length="medium", num_clips=5, prompt=prompt)
        request = MomentRequest(transcript, features, opts, (0.0, seconds))
        c0 = cpu_seconds()
        wall, sel = timed(lambda: LocalMomentScorer().select(request))
        return wall, cpu_seconds() - c0, sel

    results: dict[str, Any] = {"source_seconds": seconds, "words": len(transcript.words), "sentences": sentences,
                               "model_load_s": t_load, "embeddings": encoder is not None}
    for name, prompt in (("no_prompt", ""), ("prompt", "hiring engineers for a startup")):
        walls, cpus = [], []
        for _ in range(reps):
            wall, cpu, sel = case(prompt)
            walls.append(wall)
            cpus.append(cpu)
        results[name] = {"wall_s": walls, "cpu_s": cpus, "wall_median_s": median(walls),
                         "x_real_time": seconds / median(walls), "clips": len(sel.moments),
                         "top": [round(sel.moments[0].start, 2), round(sel.moments[0].end, 2)]}
    if encoder is not None:
        texts = _sentences(transcript)
        encoder._cache.clear()
        t0 = time.perf_counter()
        encoder.encode(texts)
        results["embeddings_only"] = {"sentences": len(texts), "wall_s": time.perf_counter() - t0}
    return rec.save(results)


def _sentences(transcript: Any) -> list[str]:
    from stages.moments.text import split_sentences

    return [s.text for s in split_sentences(transcript.words, 44.5)]


def table(data: dict[str, Any]) -> str:
    r = data["results"]
    rows = [
        ("transcript", f"{r['source_seconds'] / 60:.0f} min, {r['words']} words, {r['sentences']} sentences"),
        ("no prompt (median)", f"**{r['no_prompt']['wall_median_s']:.2f} s** "
                               f"({r['no_prompt']['x_real_time']:.0f}x real time)"),
        ("with a prompt (median)", f"**{r['prompt']['wall_median_s']:.2f} s** "
                                   f"({r['prompt']['x_real_time']:.0f}x real time)"),
    ]
    if "embeddings_only" in r:
        e = r["embeddings_only"]
        rows.append(("of which: embedding every sentence", f"{e['wall_s']:.2f} s for {e['sentences']} sentences"))
    rows.append(("embedding model load", f"{r['model_load_s']:.2f} s"))
    return md_table(("measure", "value"), rows) + "\n\n" + machine_line(data)


def main(argv: list[str] | None = None) -> None:
    harness_main(__doc__, run, table, argv, ("--reps", int))


if __name__ == "__main__":
    main()
