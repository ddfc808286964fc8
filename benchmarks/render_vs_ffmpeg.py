"""Render throughput: our RenderStage against the ffmpeg CLI doing the same work.

Same input, same 20 s window, same static centre crop to 9:16, same scale (bilinear), the
same caption track (ffmpeg burns our .ass with libass, we blend our sprites), the same
x264 preset/CRF and AAC at 128 kb/s. Runs alternate (ffmpeg, ours, ffmpeg, ours, ...) so
load from other users of the machine hits both alike; the figure of merit is the ratio of
median frames per second, ours / ffmpeg (issue target: >= 1.0x).

    python -m benchmarks.render_vs_ffmpeg [--quick] [--reps N]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import (
    FONTS,
    TALK,
    Recorder,
    bench_settings,
    cpu_seconds,
    harness_main,
    machine_line,
    md_table,
    median,
    run_cmd,
    scaled_source,
    stage_context,
    timed,
    truth_words,
)

NAME = "render_vs_ffmpeg"
ASPECT = "9:16"
PRESET = "beasty"


def _frame_count(path: Path) -> int:
    import av

    with av.open(str(path)) as c:
        return sum(1 for _ in c.demux(c.streams.video[0]) if _.size)


def ffmpeg_cmd(
    src: Path,
    start: float,
    seconds: float,
    geo: Any,
    x: int,
    ass: Path | None,
    out: Path,
    settings: Any,
) -> list[str]:
    """decode -> crop -> scale -> ass -> libx264 + aac, as our render does it."""
    vf = f"crop={geo.crop_w}:{geo.crop_h}:{x}:0,scale={geo.out_w}:{geo.out_h}:flags=bilinear"
    if ass is not None:
        vf += f",ass=filename={ass}:fontsdir={FONTS}"
    return [
        "ffmpeg",
        "-v",
        "error",
        "-y",
        "-ss",
        f"{start:g}",
        "-t",
        f"{seconds:g}",
        "-i",
        str(src),
        "-vf",
        vf,
        "-c:v",
        "libx264",
        "-preset",
        settings.x264_preset,
        "-crf",
        str(settings.x264_crf),
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "128k",
        "-ar",
        "48000",
        "-movflags",
        "+faststart",
        str(out),
    ]


def bench_case(
    label: str, src: Path, start: float, seconds: float, captions: bool, reps: int, work: Path
) -> dict[str, Any]:
    from engine.types import CropPath
    from stages.captions import build_caption_track
    from stages.framing import output_geometry
    from stages.media import probe_media
    from stages.output import RenderRequest, RenderStage, output_rate

    settings = bench_settings()
    media = probe_media(src)
    geo = output_geometry(media.width, media.height, ASPECT)
    rate = float(output_rate(media))
    n = round(seconds * rate)
    x = (geo.src_w - geo.crop_w) // 2 // 2 * 2  # even: our render snaps to chroma-aligned x too
    path = CropPath(rate, start, (float(x),) * n, (0.0,) * n, "center")
    words = truth_words(until=start + seconds + 1)

    def track() -> Any:
        return build_caption_track(words, PRESET, geo.out_w, geo.out_h, start, start + seconds)

    ass = None
    if captions:
        ass = work / f"{label}.ass"
        track().write_ass(ass)
    stage = RenderStage()
    ffmpeg_s: list[float] = []
    ours_s: list[float] = []
    ours_cpu: list[float] = []
    ff_usage: list[dict[str, float]] = []
    frames_ours = 0
    for rep in range(reps):
        ff_out = work / f"{label}_ffmpeg_{rep}.mp4"
        wall, usage = run_cmd(ffmpeg_cmd(src, start, seconds, geo, x, ass, ff_out, settings))
        ffmpeg_s.append(wall)
        ff_usage.append(usage)
        ours_out = work / f"{label}_ours_{rep}.mp4"
        # A fresh track per run: sprites are rasterised during the render, as in a job.
        req = RenderRequest(
            media, start, start + seconds, geo, path, track() if captions else None, ours_out
        )
        cpu0 = cpu_seconds()
        wall, result = timed(lambda req=req: stage.process(req, stage_context(work, settings)))
        ours_cpu.append(cpu_seconds() - cpu0)
        ours_s.append(wall)
        frames_ours = result.frames
    frames_ff = _frame_count(work / f"{label}_ffmpeg_0.mp4")
    fps_ff = [frames_ff / s for s in ffmpeg_s]
    fps_ours = [frames_ours / s for s in ours_s]
    return {
        "case": label,
        "source": f"{media.width}x{media.height}",
        "output": f"{geo.out_w}x{geo.out_h}",
        "window": [start, start + seconds],
        "captions": PRESET if captions else "none",
        "frames_ffmpeg": frames_ff,
        "frames_ours": frames_ours,
        "ffmpeg_s": ffmpeg_s,
        "ours_s": ours_s,
        "ffmpeg_fps_median": median(fps_ff),
        "ours_fps_median": median(fps_ours),
        "ratio_ours_over_ffmpeg": median(fps_ours) / median(fps_ff),
        "ffmpeg_cpu_s_median": median([u["user_s"] + u["sys_s"] for u in ff_usage]),
        "ours_cpu_s_median": median(ours_cpu),
        # CPU seconds per frame are far less sensitive to other users of the machine than wall time
        "cpu_ratio_ours_over_ffmpeg": median(ours_cpu)
        / median([u["user_s"] + u["sys_s"] for u in ff_usage]),
        "ffmpeg_peak_rss_mb": max(u["peak_rss_mb"] for u in ff_usage),
        "bytes_ffmpeg": (work / f"{label}_ffmpeg_0.mp4").stat().st_size,
        "bytes_ours": (work / f"{label}_ours_0.mp4").stat().st_size,
    }


def run(quick: bool = False, reps: int | None = None) -> dict[str, Any]:
    reps = reps or (1 if quick else 3)
    seconds, start = (6.0, 10.0) if quick else (20.0, 10.0)
    rec = Recorder(
        NAME,
        quick,
        {
            "reps": reps,
            "window_s": seconds,
            "aspect": ASPECT,
            "preset": PRESET,
            "order": "alternating ffmpeg, ours",
            "crop": "static centre",
        },
    )
    # The 1080p source: the talk scaled up, only as long as the window needs.
    hd = scaled_source(1920, 1080, seconds=start + seconds + 2)
    cases = []
    with tempfile.TemporaryDirectory(prefix="clipora-bench-render-") as tmp:
        work = Path(tmp)
        for label, src in (("720p", TALK), ("1080p", hd)):
            for captions in (True, False):
                name = f"{label}_{'captions' if captions else 'plain'}"
                print(f"[{NAME}] {name} ...", file=sys.stderr, flush=True)
                cases.append(bench_case(name, src, start, seconds, captions, reps, work))
                c = cases[-1]
                print(
                    f"[{NAME}]   ffmpeg {c['ffmpeg_fps_median']:.1f} fps, "
                    f"ours {c['ours_fps_median']:.1f} fps"
                    f" -> {c['ratio_ours_over_ffmpeg']:.2f}x",
                    file=sys.stderr,
                    flush=True,
                )
    notes = [
        "ffmpeg CLI filters run single-threaded (no -filter_threads); libx264 threads are "
        "automatic on both sides. Both sides decode from the keyframe before the window and "
        "drop earlier frames."
    ]
    return rec.save({"cases": cases}, notes)


def table(data: dict[str, Any]) -> str:
    rows = [
        (
            c["case"],
            f"{c['source']} -> {c['output']}",
            c["captions"],
            c["frames_ours"],
            f"{c['ffmpeg_fps_median']:.1f}",
            f"{c['ours_fps_median']:.1f}",
            f"**{c['ratio_ours_over_ffmpeg']:.2f}x**",
            f"{c['cpu_ratio_ours_over_ffmpeg']:.2f}x",
        )
        for c in data["results"]["cases"]
    ]
    head = (
        "case",
        "geometry",
        "captions",
        "frames",
        "ffmpeg CLI fps (median)",
        "ours fps (median)",
        "ours / ffmpeg (fps)",
        "CPU s ours / ffmpeg",
    )
    return md_table(head, rows) + "\n\n" + machine_line(data)


def main(argv: list[str] | None = None) -> None:
    harness_main(__doc__, run, table, argv, ("--reps", int))


if __name__ == "__main__":
    main()
