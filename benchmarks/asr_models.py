"""ASR models side by side: tiny.en (the default) and the multilingual base on the same audio.

Each source goes through the pipeline's own TranscribeStage (VAD + Whisper + word timestamps, beam 1,
int8, Settings.threads) with ``language`` auto: tiny.en is English without detection, base detects.

- ``speech_topics``: the committed talk's ~70 s of espeak-ng English (two voices), WER against
  truth.json's sentences with asr_rtf's normaliser (numbers as words, British -> American spelling);
- ``jfk``: the real 11 s recording in ../shared/media (skipped where that folder is absent), against
  the sentence spoken;
- ``es`` / ``de`` / ``ru``: espeak-ng speech of scripts/make_test_media.LANGUAGE_SPEECH (the tests' sentences)
  (same voices and rates), WER on lower-cased words (punctuation dropped, ё = е). tiny.en hears them
  as English: its WER there says what an English-only model makes of them.

Real-time factor = wall seconds of TranscribeStage.process / audio seconds (model load excluded; it
is timed apart), median of ``--reps``; the CPU-seconds RTF is less sensitive to other load.

    python -m benchmarks.asr_models [--quick] [--reps N]
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.asr_rtf import align, normalise
from benchmarks.common import (
    ROOT,
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
from scripts.make_test_media import LANGUAGE_SPEECH, speak_language

NAME = "asr_models"
RATE = 16_000
MODELS = ("tiny.en", "base")
SHARED_MEDIA = ROOT.parent / "shared" / "media"
JFK = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
def plain_words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower().replace("ё", "е"))


def wer(ref: list[str], hyp: list[str]) -> dict[str, Any]:
    counts, _ = align(ref, hyp)
    errors = counts["substitutions"] + counts["deletions"] + counts["insertions"]
    return {"wer": errors / max(len(ref), 1), "ref_words": len(ref), **counts}


def sources(folder: Path) -> list[dict[str, Any]]:
    """(name, 16 kHz samples, reference words, language, how the words are normalised)."""
    from faster_whisper import decode_audio

    out = [{"name": "speech_topics", "what": "committed talk, espeak-ng English, 2 voices", "language": "en",
            "samples": decode_audio(str(TALK), sampling_rate=RATE), "english": True,
            "ref": normalise(" ".join(s["text"] for s in truth()[TALK.name]["sentences"]))}]
    jfk = SHARED_MEDIA / "jfk.wav"
    if jfk.is_file():
        out.append({"name": "jfk", "what": "real recording (shared/media/jfk.wav)", "language": "en",
                    "samples": decode_audio(str(jfk), sampling_rate=RATE), "english": True, "ref": normalise(JFK)})
    for language, (_args, text) in LANGUAGE_SPEECH.items():
        wav = speak_language(language, folder)
        out.append({"name": language, "what": f"espeak-ng {language}", "language": language, "english": False,
                    "samples": decode_audio(str(wav), sampling_rate=RATE), "ref": plain_words(text)})
    return out


def run(quick: bool = False, reps: int | None = None) -> dict[str, Any]:
    from engine.types import AnalysisAudio
    from stages.speech import TranscribeRequest, TranscribeStage

    reps = reps or (1 if quick else 3)
    rec = Recorder(NAME, quick, {"reps": reps, "models": list(MODELS), "language": "auto", "beam_size": 1,
                                 "compute_type": bench_settings().whisper_compute_type,
                                 "threads": bench_settings().cpu_threads})
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="clipora-bench-asr-models-") as tmp:
        folder = Path(tmp)
        audio = sources(folder)
        for model in MODELS:
            settings = bench_settings(whisper_model=model)
            ctx = stage_context(folder, settings)
            stage = TranscribeStage()
            load_s, _ = timed(lambda stage=stage, ctx=ctx: stage.setup(ctx))
            for src in audio:
                path = folder / f"{src['name']}.npy"
                np.save(path, src["samples"])
                request = TranscribeRequest(AnalysisAudio(str(path), 0.0, RATE, len(src["samples"]) / RATE))
                walls, cpus, transcript = [], [], None
                for rep in range(reps):
                    print(f"[{NAME}] {model} {src['name']} run {rep + 1}/{reps}", file=sys.stderr, flush=True)
                    c0 = cpu_seconds()
                    wall, transcript = timed(lambda stage=stage, request=request, ctx=ctx: stage.process(request, ctx))
                    walls.append(wall)
                    cpus.append(cpu_seconds() - c0)
                assert transcript is not None
                hyp = (normalise(transcript.text) if src["english"] else plain_words(transcript.text))
                duration = len(src["samples"]) / RATE
                rows.append({"model": model, "source": src["name"], "what": src["what"], "audio_s": duration,
                             "model_load_s": load_s, "transcribe_s": walls, "transcribe_cpu_s": cpus,
                             "rtf_median": median(walls) / duration, "rtf_cpu_median": median(cpus) / duration,
                             "language_expected": src["language"], "language": transcript.language,
                             "language_probability": transcript.language_probability,
                             **wer(src["ref"], hyp), "transcript": transcript.text})
    return rec.save({"rows": rows}, [
        "RTF = wall time of TranscribeStage.process / audio duration (language auto), median of reps; "
        "model load excluded.",
        "WER = (substitutions + deletions + insertions) / reference words after normalising.",
    ])


def table(data: dict[str, Any]) -> str:
    rows = []
    for r in data["results"]["rows"]:
        lang = r["language"] + (f" ({r['language_probability']:.2f})" if r["language_probability"] is not None
                                else " (not detected)")
        rows.append((r["source"], r["what"], f"{r['audio_s']:.1f}", r["model"], f"**{r['rtf_median']:.3f}**",
                     f"{r['rtf_cpu_median']:.3f}", lang, f"**{r['wer'] * 100:.1f} %** of {r['ref_words']}"))
    loads = {r["model"]: r["model_load_s"] for r in data["results"]["rows"]}
    note = "model load: " + ", ".join(f"{m} {s:.2f} s" for m, s in loads.items())
    return (md_table(("audio", "what", "s", "model", "RTF (wall, median)", "RTF (CPU s)", "language heard",
                      "WER"), rows) + f"\n\n{note}\n\n" + machine_line(data))


def main(argv: list[str] | None = None) -> None:
    harness_main(__doc__, run, table, argv, ("--reps", int))


if __name__ == "__main__":
    main()
