"""The cost of re-rendering a clip with edits, relative to the job that made it.

A job (``end_to_end``'s options: 3 medium clips, beasty captions, 9:16) on the talk looped to
10 minutes (2 with ``--quick``), then clip 1 rendered again three ways, each timed on the same
warm worker: another caption preset (the clip's face scan and camera path reused whole), a window
grown by 5 s at its end (faces detected on those 5 s only) with a corrected word, and another
aspect ratio (faces reused, the camera re-planned). The figure of merit is re-render wall time /
job wall time, and per clip second against the job's own per-clip time.

    python -m benchmarks.rerender [--quick] [--minutes M]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Recorder, bench_settings, harness_main, looped_source, machine_line, md_table
from benchmarks.end_to_end import OPTIONS, StageClock, warm_stages

NAME = "rerender"
EDITS: tuple[tuple[str, Any], ...] = (
    ("captionPreset karaoke (faces + camera reused)", lambda clip: {"captionPreset": "karaoke"}),
    ("end + 5 s, one word corrected (faces on the 5 s only)",
     lambda clip: {"end": clip["end"] + 5.0, "words": [{"index": 0, "text": "Hello"}]}),
    ("aspectRatio 1:1 (faces reused, camera re-planned)", lambda clip: {"aspectRatio": "1:1"}),
)


def run(quick: bool = False, minutes: float | None = None) -> dict[str, Any]:
    from clipora.compose import rerender, run_job
    from engine.edits import ClipEdit
    from engine.events import EventBus
    from engine.options import ProcessOptions

    minutes = minutes or (2.0 if quick else 10.0)
    settings = bench_settings()
    rec = Recorder(NAME, quick, {"source_minutes": minutes, "threads": settings.cpu_threads,
                                 "source": "tests/media/speech_topics.mp4 looped (stream copy)"})
    source = looped_source(minutes * 60)
    with tempfile.TemporaryDirectory(prefix="clipora-bench-rerender-") as tmp:
        stages, _ = warm_stages(settings, Path(tmp))
        out, work = Path(tmp) / "out", Path(tmp) / "work"
        print(f"[{NAME}] job on {minutes:g} min ...", file=sys.stderr, flush=True)
        from clipora.compose import run_job
        from engine.options import ProcessOptions


        clock = StageClock()
        bus = EventBus()
        bus.subscribe(clock)
        t0 = time.monotonic()
        manifest = run_job(source, out, ProcessOptions.build(**OPTIONS), settings, bus=bus, stages=stages,
                           workdir=work)
        job_s = time.monotonic() - t0
        stage_s, _ = clock.breakdown(t0, t0 + job_s)
        clip_s = sum(c["duration"] for c in manifest["clips"])
        per_clip_s = sum(stage_s.get(k, 0.0) for k in ("faces", "reframe", "captions", "render", "poster")) / clip_s
        worker = stages.worker(settings)
        renders = []
        edit_so_far = ClipEdit()
        for label, make in EDITS:
            clip = json.loads((out / "manifest.json").read_text())["clips"][0]
            edit = ClipEdit.from_json(make(clip)).over(edit_so_far)
            print(f"[{NAME}] re-render: {label} ...", file=sys.stderr, flush=True)
            t1 = time.monotonic()
            result = rerender(worker, f"bench{len(renders)}render", 1, edit, source, out, work, EventBus())
            seconds = time.monotonic() - t1
            edit_so_far = edit
            duration = result["clip"]["duration"]
            renders.append({"edit": label, "seconds": seconds, "clip_duration_s": duration,
                            "over_job": seconds / job_s, "s_per_clip_s": seconds / duration,
                            "over_job_per_clip_s": (seconds / duration) / per_clip_s})
    results = {"job_s": job_s, "source_s": minutes * 60, "clips": len(manifest["clips"]), "clip_seconds": clip_s,
               "job_clip_unit_s_per_clip_s": per_clip_s, "stages_s": stage_s, "renders": renders}
    return rec.save(results, ["Each re-render runs on the job's warm worker (models loaded once), as a "
                                "serving worker does; edits accumulate as the API's do."])


def table(data: dict[str, Any]) -> str:
    r = data["results"]
    head = (f"Job: {r['source_s'] / 60:.0f}-minute source, {r['clips']} clips ({r['clip_seconds']:.0f} s), "
            f"**{r['job_s']:.1f} s**; its clip units took {r['job_clip_unit_s_per_clip_s']:.2f} s per clip second.")
    rows = [(x["edit"], f"{x['seconds']:.1f} s", f"{x['clip_duration_s']:.1f} s",
             f"**{x['over_job'] * 100:.1f} %**", f"{x['s_per_clip_s']:.2f}",
             f"{x['over_job_per_clip_s']:.2f}x") for x in r["renders"]]
    return head + "\n\n" + md_table(("re-render of clip 1", "wall", "clip", "of the job's time", "s per clip s",
                                     "vs the job's per clip s"), rows) + "\n\n" + machine_line(data)


def main(argv: list[str] | None = None) -> None:
    harness_main(__doc__, run, table, argv, ("--minutes", float))


if __name__ == "__main__":
    main()
