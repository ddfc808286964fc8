"""End to end: a synthetic 10-minute 720p talk through ``run_job`` (3 medium clips).

The source is tests/media/speech_topics.mp4 looped by stream copy to 10 minutes (2 with
``--quick``). Models are loaded before the job (a worker keeps them warm; the load is
reported on its own line). The figure of merit is job wall time / source duration (issue
target: <= 0.15x on 2 cores). The per-stage breakdown comes from the job's EventBus: the
time from the first event of a stage to the first event of the next one. As a machine
speed reference, the same command times the ffmpeg CLI decoding the whole source.

    python -m benchmarks.end_to_end [--quick] [--minutes M]
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    Recorder,
    bench_settings,
    cpu_seconds,
    harness_main,
    looped_source,
    machine_line,
    md_table,
    run_cmd,
    stage_context,
    timed,
)

NAME = "end_to_end"
OPTIONS = {
    "num_clips": 3,
    "clip_length": "medium",
    "aspect_ratio": "9:16",
    "caption_preset": "beasty",
}


class StageClock:
    """Turns a job's events into seconds per stage (stages run one after another): wall and CPU."""

    def __init__(self) -> None:
        self.events: list[tuple[float, float, str, str]] = []  # (monotonic time, CPU s, type, stage)
        self._lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        with self._lock:
            self.events.append((time.monotonic(), cpu_seconds(), event.type, event.stage))

    def breakdown(self, t_start: float, t_end: float, cpu_start: float = 0.0,
                  cpu_end: float = 0.0) -> tuple[dict[str, float], dict[str, float]]:
        """(wall s per stage, CPU s per stage): a stage runs from its first event to the next one's."""
        spans: dict[str, float] = {}
        cpu: dict[str, float] = {}
        current, since, cpu_since = "setup", t_start, cpu_start
        for t, c, kind, stage in self.events:
            name = stage if kind == "progress" and stage else current
            if name != current:
                spans[current] = spans.get(current, 0.0) + (t - since)
                cpu[current] = cpu.get(current, 0.0) + (c - cpu_since)
                current, since, cpu_since = name, t, c
        spans[current] = spans.get(current, 0.0) + (t_end - since)
        cpu[current] = cpu.get(current, 0.0) + (cpu_end - cpu_since)
        return spans, cpu


def warm_stages(settings: Any, work: Path) -> tuple[Any, dict[str, float]]:
    """A StageSet with its models loaded, and how long each load took."""
    from clipora.compose import StageSet

    stages = StageSet()
    ctx = stage_context(work, settings)
    loads = {}
    for name in ("transcribe", "faces", "diarize"):
        stage = getattr(stages, name)
        loads[name] = timed(lambda stage=stage: stage.setup(ctx))[0]
    return stages, loads


def job_once(source: Path, settings: Any, stages: Any, out: Path, on_event: Any = None) -> dict[str, Any]:
    from clipora.compose import run_job
    from engine.events import EventBus
    from engine.options import ProcessOptions

    clock = StageClock()
    bus = EventBus()
    bus.subscribe(clock)
    if on_event is not None:
        bus.subscribe(on_event)
    c0 = cpu_seconds()
    t0 = time.monotonic()
    manifest = run_job(
        source, out, ProcessOptions.build(**OPTIONS), settings, bus=bus, stages=stages
    )
    t1 = time.monotonic()
    c1 = cpu_seconds()
    spans, cpu = clock.breakdown(t0, t1, c0, c1)
    return {
        "job_s": t1 - t0,
        "job_cpu_s": c1 - c0,
        "stages_s": spans,
        "stages_cpu_s": cpu,
        "clips": [
            {"start": c["start"], "end": c["end"], "duration": c["duration"]}
            for c in manifest["clips"]
        ],
    }


def run(quick: bool = False, minutes: float | None = None) -> dict[str, Any]:
    from engine.heap import limit_malloc_arenas
    from stages.media import probe_media

    minutes = minutes or (2.0 if quick else 10.0)
    settings = bench_settings()
    limit_malloc_arenas(settings.malloc_arenas)  # as a worker process does
    rec = Recorder(
        NAME,
        quick,
        {
            "source_minutes": minutes,
            "options": OPTIONS,
            "source": "tests/media/speech_topics.mp4 looped (stream copy)",
            "threads": settings.cpu_threads,
        },
    )
    source = looped_source(minutes * 60)
    duration = probe_media(source).duration
    ref_s, _ = run_cmd(["ffmpeg", "-v", "error", "-i", str(source), "-f", "null", "-"])
    with tempfile.TemporaryDirectory(prefix="clipora-bench-e2e-") as tmp:
        stages, loads = warm_stages(settings, Path(tmp))
        print(f"[{NAME}] job on {duration:.0f} s source ...", file=sys.stderr, flush=True)
        job = job_once(source, settings, stages, Path(tmp) / "out")
    clip_s = sum(c["duration"] for c in job["clips"])
    results = {
        "source_duration_s": duration,
        "reference_ffmpeg_decode_s": ref_s,
        "model_load_s": loads,
        **job,
        "job_over_source": job["job_s"] / duration,
        "job_plus_load_over_source": (job["job_s"] + sum(loads.values())) / duration,
        "job_over_reference_decode": job["job_s"] / ref_s,
        "clip_seconds": clip_s,
        "render_s_per_clip_s": job["stages_s"].get("render", 0.0) / max(clip_s, 1e-9),
        "stage_share": {k: v / job["job_s"] for k, v in job["stages_s"].items()},
    }
    return rec.save(
        results,
        [
            "Stage times come from event timestamps: each stage runs from its first "
            "event to the next stage's first event (so a stage's setup, when not "
            "warmed, lands in the stage before it)."
        ],
    )


def table(data: dict[str, Any]) -> str:
    r = data["results"]
    summary = md_table(
        ("measure", "value"),
        [
            ("source", f"{r['source_duration_s'] / 60:.1f} min, 1280x720 25 fps"),
            ("clips", f"{len(r['clips'])} clips, {r['clip_seconds']:.1f} s in all"),
            ("job time / source duration", f"**{r['job_over_source']:.3f}x** (target <= 0.15x)"),
            ("... including model load", f"{r['job_plus_load_over_source']:.3f}x"),
            (
                "job time / ffmpeg full decode of the source",
                f"{r['job_over_reference_decode']:.2f}x",
            ),
            ("render wall s per clip s", f"{r['render_s_per_clip_s']:.2f}"),
            ("CPU s / wall s", f"{r['job_cpu_s'] / r['job_s']:.2f}"),
        ],
    )
    order = [
        "setup",
        "probe",
        "audio",
        "transcribe",
        "highlights",
        "faces",
        "reframe",
        "captions",
        "render",
        "poster",
        "manifest",
    ]
    stages = sorted(r["stages_s"], key=lambda s: order.index(s) if s in order else len(order))
    cpu = r.get("stages_cpu_s", {})
    per = md_table(
        ("stage", "share of job", "x source duration", "CPU s / wall s"),
        [
            (
                s,
                f"{r['stage_share'][s] * 100:.1f} %",
                f"{r['stages_s'][s] / r['source_duration_s']:.4f}",
                f"{cpu[s] / r['stages_s'][s]:.2f}" if s in cpu and r["stages_s"][s] > 0.05 else "-",
            )
            for s in stages
        ],
    )
    return summary + "\n\n" + per + "\n\n" + machine_line(data)


def main(argv: list[str] | None = None) -> None:
    harness_main(__doc__, run, table, argv, ("--minutes", float))


if __name__ == "__main__":
    main()
