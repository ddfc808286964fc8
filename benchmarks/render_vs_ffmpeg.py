"""Render throughput: our RenderStage against the ffmpeg CLI doing the same work.

Same input, same 20 s window, same static centre crop to 9:16, same scale (bilinear), the
same caption track (ffmpeg burns our .ass with libass, we blend our sprites), the same
x264 preset/CRF and AAC at 128 kb/s. Runs alternate (ffmpeg, ours, ours in one piece, ffmpeg,
...) so load from other users of the machine hits all alike; the figure of merit is the ratio of
median frames per second, ours / ffmpeg (issue target: >= 1.10x). "Ours" is the render as it
ships (time chunks side by side, ``Settings.render_chunks`` auto); "one piece" is the same render
with ``render_chunks=1``. Quality: PSNR/SSIM of each side's output against its own lossless render
of the same pictures (x264 CRF 0), and the two lossless renders against each other.

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
    video_quality,
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
    one_piece = bench_settings(render_chunks=1)
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

    def ours(out: Path, run_settings: Any) -> tuple[float, float, int]:
        # A fresh track per run: sprites are rasterised during the render, as in a job.
        req = RenderRequest(media, start, start + seconds, geo, path, track() if captions else None, out)
        cpu0 = cpu_seconds()
        wall, result = timed(lambda: stage.process(req, stage_context(work, run_settings)))
        return wall, cpu_seconds() - cpu0, result.frames

    runs: dict[str, dict[str, list[float]]] = {k: {"wall": [], "cpu": []} for k in ("ffmpeg", "ours", "one")}
    ff_rss: list[float] = []
    frames_ours = 0
    for rep in range(reps):  # interleaved, so other load on the machine hits every side alike
        wall, usage = run_cmd(ffmpeg_cmd(src, start, seconds, geo, x, ass, work / f"{label}_ffmpeg_{rep}.mp4",
                                         settings))
        runs["ffmpeg"]["wall"].append(wall)
        runs["ffmpeg"]["cpu"].append(usage["user_s"] + usage["sys_s"])
        ff_rss.append(usage["peak_rss_mb"])
        for key, run_settings in (("ours", settings), ("one", one_piece)):
            wall, cpu, frames_ours = ours(work / f"{label}_{key}_{rep}.mp4", run_settings)
            runs[key]["wall"].append(wall)
            runs[key]["cpu"].append(cpu)
    frames_ff = _frame_count(work / f"{label}_ffmpeg_0.mp4")
    # quality: each side against its own lossless render of the same pictures (x264 CRF 0), and the
    # two lossless renders against each other (how far the pictures differ before encoding)
    lossless = bench_settings(x264_crf=0, render_chunks=1)
    run_cmd(ffmpeg_cmd(src, start, seconds, geo, x, ass, work / f"{label}_ffmpeg_ref.mp4", lossless))
    ours(work / f"{label}_ours_ref.mp4", lossless)
    quality = {
        "ffmpeg": video_quality(work / f"{label}_ffmpeg_0.mp4", work / f"{label}_ffmpeg_ref.mp4"),
        "ours": video_quality(work / f"{label}_ours_0.mp4", work / f"{label}_ours_ref.mp4"),
        "one": video_quality(work / f"{label}_one_0.mp4", work / f"{label}_ours_ref.mp4"),
        "refs": video_quality(work / f"{label}_ours_ref.mp4", work / f"{label}_ffmpeg_ref.mp4"),
    }
    fps = {k: median([(frames_ff if k == "ffmpeg" else frames_ours) / w for w in r["wall"]])
           for k, r in runs.items()}
    cpu = {k: median(r["cpu"]) for k, r in runs.items()}
    return {
        "case": label,
        "source": f"{media.width}x{media.height}",
        "output": f"{geo.out_w}x{geo.out_h}",
        "window": [start, start + seconds],
        "captions": PRESET if captions else "none",
        "frames_ffmpeg": frames_ff,
        "frames_ours": frames_ours,
        "ffmpeg_s": runs["ffmpeg"]["wall"],
        "ours_s": runs["ours"]["wall"],
        "one_piece_s": runs["one"]["wall"],
        "ffmpeg_fps_median": fps["ffmpeg"],
        "ours_fps_median": fps["ours"],
        "one_piece_fps_median": fps["one"],
        "ratio_ours_over_ffmpeg": fps["ours"] / fps["ffmpeg"],
        "ratio_one_piece_over_ffmpeg": fps["one"] / fps["ffmpeg"],
        "ffmpeg_cpu_s_median": cpu["ffmpeg"],
        "ours_cpu_s_median": cpu["ours"],
        "one_piece_cpu_s_median": cpu["one"],
        # CPU seconds per frame are far less sensitive to other users of the machine than wall time
        "cpu_ratio_ours_over_ffmpeg": cpu["ours"] / cpu["ffmpeg"],
        "cpu_ratio_one_piece_over_ffmpeg": cpu["one"] / cpu["ffmpeg"],
        "ffmpeg_peak_rss_mb": max(ff_rss),
        "bytes_ffmpeg": (work / f"{label}_ffmpeg_0.mp4").stat().st_size,
        "bytes_ours": (work / f"{label}_ours_0.mp4").stat().st_size,
        "bytes_one_piece": (work / f"{label}_one_0.mp4").stat().st_size,
        "quality": quality,
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
            "order": "alternating ffmpeg, ours, ours in one piece",
            "crop": "static centre",
            "render_chunks": "auto (ours), 1 (one piece)",
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
    def q(c: dict[str, Any], side: str) -> str:
        got = c.get("quality", {}).get(side)
        return f"{got['psnr_db']:.1f} / {got['ssim']:.4f}" if got else "-"

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
            f"{c['ratio_one_piece_over_ffmpeg']:.2f}x" if "ratio_one_piece_over_ffmpeg" in c else "-",
            f"{c['bytes_ours'] / c['bytes_ffmpeg']:.3f}",
            q(c, "ours"),
            q(c, "ffmpeg"),
            q(c, "refs"),
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
        "one piece / ffmpeg (fps)",
        "bytes ours / ffmpeg",
        "ours PSNR dB / SSIM",
        "ffmpeg PSNR dB / SSIM",
        "references ours vs ffmpeg",
    )
    return md_table(head, rows) + "\n\n" + machine_line(data)


def main(argv: list[str] | None = None) -> None:
    harness_main(__doc__, run, table, argv, ("--reps", int))


if __name__ == "__main__":
    main()
