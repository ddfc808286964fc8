"""Peak memory: flat in clip length (render) and in source length (whole jobs).

Every measurement runs in a fresh interpreter (``python -m benchmarks.memory --child ...``)
and reads its own peak RSS at the end, next to the peak right after the imports (the
baseline every run pays). The peak is the kernel's high-water mark of the process's own
address space (``VmHWM``; ``getrusage``'s ``ru_maxrss`` on Linux also counts the parent's
RSS at fork, so a child of a big parent would report the parent's size). The ffmpeg CLI
rendering the same clip is the reference (its VmHWM, sampled until it exits).

- render: 10 s, 40 s and 80 s clips (720p -> 9:16, beasty captions) of a 2-minute source.
- jobs: ``run_job`` (3 medium clips, beasty) on 1-, 10- and 60-minute sources (``--job-minutes``),
  RSS sampled every 0.2 s and the largest value kept per stage. The
  analysis audio (16 kHz mono float32 = 64 KB per second of source) grows with the source
  by design; it is reported next to the measured growth.

    python -m benchmarks.memory [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    Recorder,
    bench_settings,
    harness_parser,
    looped_source,
    machine_line,
    md_table,
    peak_rss_mb,
    run_child,
    run_cmd,
    stage_context,
    truth_words,
)

NAME = "memory"
RENDER_START = 5.0
ANALYSIS_AUDIO_BYTES_PER_S = 16_000 * 4


# -- children (fresh interpreters) -----------------------------------------------------------------


def child_render(source: Path, seconds: float) -> dict[str, Any]:
    from engine.types import CropPath
    from stages.captions import build_caption_track
    from stages.framing import output_geometry
    from stages.media import probe_media
    from stages.output import RenderRequest, RenderStage, output_rate

    base = peak_rss_mb()
    settings = bench_settings()
    media = probe_media(source)
    geo = output_geometry(media.width, media.height, "9:16")
    rate = float(output_rate(media))
    n = round(seconds * rate)
    x = float((geo.src_w - geo.crop_w) // 2)
    path = CropPath(rate, RENDER_START, (x,) * n, (0.0,) * n, "center")
    end = RENDER_START + seconds
    track = build_caption_track(
        truth_words(until=end + 1), "beasty", geo.out_w, geo.out_h, RENDER_START, end
    )
    with tempfile.TemporaryDirectory(prefix="clipora-bench-mem-") as tmp:
        t0 = time.perf_counter()
        result = RenderStage().process(
            RenderRequest(media, RENDER_START, end, geo, path, track, Path(tmp) / "clip.mp4"),
            stage_context(Path(tmp), settings),
        )
        wall = time.perf_counter() - t0
    return {
        "baseline_rss_mb": base,
        "peak_rss_mb": peak_rss_mb(),
        "frames": result.frames,
        "wall_s": wall,
    }


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child_job(source: Path) -> dict[str, Any]:
    import threading

    from engine.heap import limit_malloc_arenas

    settings = bench_settings()
    limit_malloc_arenas(settings.malloc_arenas)  # as a worker process does first
    import clipora.compose  # noqa: F401 - the heavy imports belong to the baseline
    from benchmarks.end_to_end import OPTIONS, job_once, warm_stages

    base = peak_rss_mb()
    stage = ["models"]
    by_stage: dict[str, float] = {}
    done = threading.Event()

    def on_event(event: Any) -> None:
        if event.type == "progress" and event.stage:
            stage[0] = event.stage

    def sample() -> None:  # RSS every 0.2 s, the largest seen per stage
        while not done.wait(0.2):
            by_stage[stage[0]] = max(by_stage.get(stage[0], 0.0), _rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with tempfile.TemporaryDirectory(prefix="clipora-bench-mem-") as tmp:
        stages, _ = warm_stages(settings, Path(tmp))
        after_models = peak_rss_mb()
        job = job_once(source, settings, stages, Path(tmp) / "out", on_event=on_event)
    done.set()
    sampler.join()
    return {
        "baseline_rss_mb": base,
        "models_rss_mb": after_models,
        "peak_rss_mb": peak_rss_mb(),
        "rss_by_stage_mb": {k: round(v, 1) for k, v in by_stage.items()},
        "wall_s": job["job_s"],
        "clips": len(job["clips"]),
        "options": OPTIONS,
    }


# -- the benchmark ---------------------------------------------------------------------------------


def _ffmpeg_render_rss(source: Path, seconds: float, work: Path) -> float:
    from benchmarks.render_vs_ffmpeg import ffmpeg_cmd
    from stages.framing import output_geometry
    from stages.media import probe_media

    media = probe_media(source)
    geo = output_geometry(media.width, media.height, "9:16")
    x = (geo.src_w - geo.crop_w) // 2 // 2 * 2
    _, usage = run_cmd(
        ffmpeg_cmd(source, RENDER_START, seconds, geo, x, None, work / "ff.mp4", bench_settings())
    )
    return usage["peak_rss_mb"]


def run(quick: bool = False, job_minutes: list[float] | None = None) -> dict[str, Any]:
    clip_lengths = [5.0, 20.0] if quick else [10.0, 40.0, 80.0]
    job_minutes = job_minutes or ([1.0, 2.0] if quick else [1.0, 10.0, 60.0])
    rec = Recorder(
        NAME,
        quick,
        {
            "clip_lengths_s": clip_lengths,
            "job_source_minutes": job_minutes,
            "render": "720p -> 9:16 static centre crop, beasty captions",
            "job_options": "3 medium clips, 9:16, beasty",
        },
    )
    render_src = looped_source(max(120.0, max(clip_lengths) + RENDER_START + 5))
    renders = []
    with tempfile.TemporaryDirectory(prefix="clipora-bench-mem-") as tmp:
        for seconds in clip_lengths:
            print(f"[{NAME}] render {seconds:g} s clip", file=sys.stderr, flush=True)
            got = run_child(
                "benchmarks.memory", ["--child", "render", str(render_src), str(seconds)]
            )
            got["ffmpeg_peak_rss_mb"] = _ffmpeg_render_rss(render_src, seconds, Path(tmp))
            renders.append({"clip_s": seconds, **got})
    jobs = []
    for minutes in job_minutes:
        source = looped_source(minutes * 60)
        print(f"[{NAME}] job on a {minutes:g} min source", file=sys.stderr, flush=True)
        got = run_child("benchmarks.memory", ["--child", "job", str(source)])
        jobs.append(
            {
                "source_s": minutes * 60,
                "analysis_audio_mb": minutes * 60 * ANALYSIS_AUDIO_BYTES_PER_S / 2**20,
                **got,
            }
        )
    r0, r1 = renders[0], renders[-1]
    j0, j1 = jobs[0], jobs[-1]
    results = {
        "renders": renders,
        "jobs": jobs,
        "render_growth_mb": r1["peak_rss_mb"] - r0["peak_rss_mb"],
        "render_growth_mb_per_clip_s": (r1["peak_rss_mb"] - r0["peak_rss_mb"])
        / (r1["clip_s"] - r0["clip_s"]),
        "job_growth_mb": j1["peak_rss_mb"] - j0["peak_rss_mb"],
        "job_growth_expected_audio_mb": j1["analysis_audio_mb"] - j0["analysis_audio_mb"],
        "job_growth_kb_per_source_s": (j1["peak_rss_mb"] - j0["peak_rss_mb"])
        * 1024
        / (j1["source_s"] - j0["source_s"]),
    }
    return rec.save(
        results, ["RSS in MiB (VmHWM). 'baseline' = peak right after imports in the child."]
    )


def table(data: dict[str, Any]) -> str:
    r = data["results"]
    renders = md_table(
        ("render clip", "frames", "peak RSS (MiB)", "over baseline", "ffmpeg CLI peak RSS"),
        [
            (
                f"{x['clip_s']:g} s",
                x["frames"],
                f"{x['peak_rss_mb']:.0f}",
                f"{x['peak_rss_mb'] - x['baseline_rss_mb']:.0f}",
                f"{x['ffmpeg_peak_rss_mb']:.0f}",
            )
            for x in r["renders"]
        ],
    )
    jobs = md_table(
        (
            "job source",
            "peak RSS (MiB)",
            "after imports",
            "after model load",
            "analysis audio (MiB)",
            "largest RSS by stage (MiB)",
        ),
        [
            (
                f"{x['source_s'] / 60:g} min",
                f"{x['peak_rss_mb']:.0f}",
                f"{x['baseline_rss_mb']:.0f}",
                f"{x['models_rss_mb']:.0f}",
                f"{x['analysis_audio_mb']:.1f}",
                ", ".join(f"{k} {v:.0f}" for k, v in sorted(x.get("rss_by_stage_mb", {}).items(),
                                                           key=lambda kv: -kv[1])[:4]),
            )
            for x in r["jobs"]
        ],
    )
    growth = (
        f"Render growth {r['render_growth_mb']:+.1f} MiB from the shortest to the longest clip "
        f"({r['render_growth_mb_per_clip_s'] * 1024:+.0f} KiB per clip second). Job growth "
        f"{r['job_growth_mb']:+.1f} MiB from the shortest to the longest source "
        f"({r['job_growth_kb_per_source_s']:+.0f} KiB per source second; the analysis audio alone "
        f"accounts for {r['job_growth_expected_audio_mb']:+.1f} MiB at 62.5 KiB/s)."
    )
    return renders + "\n\n" + jobs + "\n\n" + growth + "\n\n" + machine_line(data)


def main(argv: list[str] | None = None) -> None:
    p = harness_parser(__doc__)
    p.add_argument("--job-minutes", help="comma-separated source lengths for the job cases (default 1,10,60)")
    p.add_argument("--child", nargs="+", metavar=("KIND", "ARGS"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        got = (
            child_render(Path(rest[0]), float(rest[1]))
            if kind == "render"
            else child_job(Path(rest[0]))
        )
        print(json.dumps(got))
        return
    minutes = [float(m) for m in args.job_minutes.split(",")] if args.job_minutes else None
    print(table(run(args.quick, minutes)))


if __name__ == "__main__":
    main()
