"""Shared helpers for the benchmark harnesses: sources, timing, peak RSS, result files.

Benchmarks measure, they never assert. The machine they usually run on is small and
shared, so every harness measures a *reference* in the same command (the ffmpeg CLI, the
audio duration, a full decode of the source) and reports ratios; absolute seconds are kept
in the JSON for context only. Generated sources go to a temporary cache folder, never into
the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT / "tests" / "media"
FONTS = ROOT / "stages" / "fonts"
RESULTS = ROOT / "benchmarks" / "results"
TALK = MEDIA / "speech_topics.mp4"


# -- machine and environment -----------------------------------------------------------------


def load_average() -> list[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # not available on every platform
        return []


def _ffmpeg_cli_version() -> str:
    try:
        out = subprocess.run(
            ["ffmpeg", "-version"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "missing"
    return out.splitlines()[0].split(" Copyright")[0].removeprefix("ffmpeg version ")


def _git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def versions() -> dict[str, str]:
    found: dict[str, str] = {
        "python": platform.python_version(),
        "ffmpeg_cli": _ffmpeg_cli_version(),
    }
    for module in ("av", "numpy", "cv2", "faster_whisper", "ctranslate2", "onnxruntime"):
        try:
            found[module] = str(__import__(module).__version__)
        except Exception:  # a missing optional module is reported, not fatal
            found[module] = "missing"
    try:
        import av

        libav = av.library_versions.get("libavcodec")
        found["pyav_libavcodec"] = ".".join(map(str, libav)) if libav else "unknown"
    except Exception:
        pass
    return found


def machine_info() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "git_commit": _git_commit(),
        "versions": versions(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


# -- timing ----------------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(wall seconds, result) of one call."""
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def run_cmd(cmd: Sequence[str], **kwargs: Any) -> tuple[float, dict[str, float]]:
    """Run a command to completion: (wall seconds, its own user/sys CPU s and peak RSS MiB)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(list(cmd), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs)
    done = threading.Event()
    peak = [0.0]

    def watch() -> None:
        # wait4's ru_maxrss is useless here (see vm_hwm_mb), so sample the child's VmHWM,
        # which only ever grows, until it exits.
        while not done.is_set():
            got = vm_hwm_mb(proc.pid)
            if got is not None:
                peak[0] = max(peak[0], got)
            done.wait(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own CPU times
    done.set()
    watcher.join()
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {err[-2000:]}")
    return wall, {"user_s": usage.ru_utime, "sys_s": usage.ru_stime, "peak_rss_mb": peak[0]}


def video_quality(distorted: Path, reference: Path) -> dict[str, float]:
    """PSNR (dB, all planes) and SSIM (all planes) of a video against a reference of the same
    size and frame count, by the ffmpeg CLI's ``psnr`` and ``ssim`` filters."""
    graph = "[0:v]split[a][b];[1:v]split[c][d];[a][c]psnr;[b][d]ssim"
    err = subprocess.run(["ffmpeg", "-v", "info", "-nostats", "-i", str(distorted), "-i", str(reference),
                          "-lavfi", graph, "-f", "null", "-"], capture_output=True, text=True, check=True).stderr
    psnr = re.search(r"PSNR .*? average:([0-9.]+|inf)", err)
    ssim = re.search(r"SSIM .*? All:([0-9.]+)", err)
    if psnr is None or ssim is None:
        raise RuntimeError(f"no PSNR/SSIM in ffmpeg's output: {err[-500:]}")
    return {"psnr_db": float(psnr.group(1)), "ssim": float(ssim.group(1))}


def vm_hwm_mb(pid: int | str = "self") -> float | None:
    """Peak RSS (MiB) of a process's current address space, from /proc/PID/status VmHWM.

    Preferred to getrusage's ru_maxrss, which on Linux carries over the *parent's* RSS at
    fork into the exec'd child (a 50 MB ffmpeg started from a 1.3 GB Python reports 1.3 GB).
    """
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return None


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, MiB (VmHWM; getrusage where no /proc)."""
    got = vm_hwm_mb()
    return got if got is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


# -- sources ---------------------------------------------------------------------------------


def source_cache() -> Path:
    """Where generated sources live between harnesses (a temp folder, never the repository)."""
    path = Path(
        os.environ.get("CLIPORA_BENCH_CACHE", Path(tempfile.gettempdir()) / "clipora-bench")
    )
    path.mkdir(parents=True, exist_ok=True)
    return path


def _ffmpeg_to(out: Path, args: Sequence[str]) -> Path:
    if out.is_file() and out.stat().st_size > 0:
        return out
    tmp = out.with_name(f".{out.stem}.partial{out.suffix}")
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args, str(tmp)], check=True)
    os.replace(tmp, out)
    return out


def scaled_source(width: int, height: int, seconds: float | None = None, src: Path = TALK) -> Path:
    """``src`` re-encoded at ``width`` x ``height`` (cached); e.g. a 1080p version of the talk."""
    tag = f"{src.stem}_{width}x{height}" + (f"_{seconds:g}s" if seconds else "")
    cut = ["-t", f"{seconds:g}"] if seconds else []
    return _ffmpeg_to(
        source_cache() / f"{tag}.mp4",
        [
            "-i",
            str(src),
            *cut,
            "-vf",
            f"scale={width}:{height}:flags=bicubic",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "23",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "copy",
            "-movflags",
            "+faststart",
        ],
    )


def looped_source(seconds: float, src: Path = TALK) -> Path:
    """``src`` looped to ``seconds`` by stream copy (cached): a long talk, made in seconds."""
    return _ffmpeg_to(
        source_cache() / f"{src.stem}_loop_{seconds:g}s.mp4",
        [
            "-stream_loop",
            "-1",
            "-i",
            str(src),
            "-t",
            f"{seconds:g}",
            "-c",
            "copy",
            "-movflags",
            "+faststart",
        ],
    )


def truth() -> dict[str, Any]:
    return json.loads((MEDIA / "truth.json").read_text(encoding="utf-8"))["files"]


def truth_words(name: str = "speech_topics.mp4", until: float | None = None) -> list[Any]:
    """The ground-truth sentences as timed words (spread over each sentence by letters).

    With ``until`` the sentences repeat every source duration (for looped sources).
    """
    from engine.types import Word

    info = truth()[name]
    period = float(info["duration"])
    words: list[Word] = []
    offset = 0.0
    while True:
        for s in info["sentences"]:
            tokens = s["text"].split()
            span = float(s["end"]) - float(s["start"])
            total = sum(len(t) + 1 for t in tokens)
            t = float(s["start"]) + offset
            for tok in tokens:
                d = span * (len(tok) + 1) / total
                words.append(Word(round(t, 3), round(t + d * 0.9, 3), tok))
                t += d
        offset += period
        if until is None or offset >= until:
            return words


# -- speaker truth (benchmarks/diarize_cost.py and tests/stages/speech/test_diarize.py) -------------


def rttm_turns(path: Path, uri: str | None = None) -> list[tuple[float, float, str]]:
    """An RTTM file's speaker turns as (start s, end s, speaker); ``uri``: only that recording's."""
    out = []
    for line in path.read_text().splitlines():
        p = line.split()
        if p and (uri is None or p[1] == uri):
            out.append((float(p[3]), float(p[3]) + float(p[4]), p[7]))
    return out


def rttm_truth(words: Sequence[Any], ref: Sequence[tuple[float, float, str]], period: float = 0.0) -> list[str]:
    """Each word's reference speaker: the one turn its middle falls in ("" in overlaps and gaps: not
    scored); ``period``: the audio is the reference's recording looped every ``period`` s."""
    out = []
    for w in words:
        mid = (w.start + w.end) / 2
        mid = mid % period if period else mid
        owners = {s for a, b, s in ref if a <= mid < b}
        out.append(owners.pop() if len(owners) == 1 else "")
    return out


def speaker_accuracy(labels: Sequence[str], ref: Sequence[str]) -> float:
    """Share of words labelled right under the best one-to-one speaker mapping (greedy, most shared
    words first); words whose reference is "" are not scored (NaN where none is)."""
    scored = [(lab, r) for lab, r in zip(labels, ref, strict=True) if r]
    if not scored:
        return float("nan")
    mapping: dict[str, str] = {}
    for (lab, r), _ in Counter(scored).most_common():
        if lab not in mapping and r not in mapping.values():
            mapping[lab] = r
    return sum(mapping.get(lab) == r for lab, r in scored) / len(scored)


# -- settings and contexts ---------------------------------------------------------------------


def bench_settings(**overrides: Any) -> Any:
    """Default settings on the CPU backend, ignoring the caller's CLIPORA_* environment."""
    from engine.config import Settings

    return Settings.from_env(environ={}, backend="cpu", **overrides)


def stage_context(workdir: Path, settings: Any = None, job_id: str = "bench") -> Any:
    from engine.backends import select_backend
    from engine.stage import StageContext

    return StageContext(job_id, workdir, settings or bench_settings(), select_backend("cpu"))


# -- child processes (fresh interpreters for peak RSS) ---------------------------------------------


def run_child(module: str, args: Sequence[str], timeout: float = 1800) -> dict[str, Any]:
    """Run ``python -m module args`` in a fresh interpreter; its last stdout line is JSON."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {module} {' '.join(args)} failed: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- results ---------------------------------------------------------------------------------------


class Recorder:
    """Collects one harness's result: parameters, machine, load before/after, wall time."""

    def __init__(self, name: str, quick: bool, params: dict[str, Any]) -> None:
        self.name = name
        self.data: dict[str, Any] = {
            "benchmark": name,
            "quick": quick,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": machine_info(),
            "load_before": load_average(),
            "params": params,
        }
        self._t0 = time.perf_counter()

    def finish(self, results: dict[str, Any], notes: Sequence[str] = ()) -> dict[str, Any]:
        self.data["load_after"] = load_average()
        self.data["harness_wall_s"] = round(time.perf_counter() - self._t0, 2)
        self.data["results"] = results
        self.data["notes"] = list(notes)
        return self.data

    def save(self, results: dict[str, Any], notes: Sequence[str] = ()) -> dict[str, Any]:
        """:meth:`finish`, then :func:`write_result`: the end of every harness's ``run()``."""
        data = self.finish(results, notes)
        write_result(data)
        return data


def result_path(name: str, quick: bool = False) -> Path:
    return RESULTS / (f"{name}.quick.json" if quick else f"{name}.json")


def write_result(data: dict[str, Any]) -> Path:
    """benchmarks/results/<name>.json (``<name>.quick.json`` for --quick runs)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = result_path(data["benchmark"], bool(data.get("quick")))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(_rounded(data), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_result(name: str, quick: bool = False) -> dict[str, Any] | None:
    path = result_path(name, quick)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def machine_line(data: dict[str, Any]) -> str:
    """One line under each table: where and when the numbers came from."""
    m = data["machine"]
    v = m["versions"]
    return (
        f"_{data['started'][:16]}, commit {m['git_commit']}, {m['cpu_count']} CPUs "
        f"({m['processor']}), load {data['load_before']} -> {data['load_after']}, "
        f"PyAV {v.get('av')}, ffmpeg CLI {v.get('ffmpeg_cli')}"
        + (" — QUICK run" if data.get("quick") else "")
        + "_"
    )


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


# -- command lines -------------------------------------------------------------------------------


def harness_parser(doc: str | None, *options: tuple[str, type]) -> argparse.ArgumentParser:
    """A harness's argument parser: its docstring's first line, ``--quick``, and one optional
    typed flag (default None) per ``(flag, type)`` in ``options``, e.g. ``("--reps", int)``."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    p.add_argument("--quick", action="store_true")
    for flag, kind in options:
        p.add_argument(flag, type=kind)
    return p


def harness_main(
    doc: str | None,
    run: Callable[..., dict[str, Any]],
    table: Callable[[dict[str, Any]], str],
    argv: Sequence[str] | None = None,
    *options: tuple[str, type],
) -> dict[str, Any]:
    """The usual ``main()``: parse ``--quick`` and ``options`` (see :func:`harness_parser`), call
    ``run(quick, *their values)`` (it writes the result file), print its ``table``; the data back."""
    args = harness_parser(doc, *options).parse_args(argv)
    values = [getattr(args, flag.lstrip("-").replace("-", "_")) for flag, _ in options]
    data = run(args.quick, *values)
    print(table(data))
    return data


def have_ffmpeg() -> bool:
    return shutil.which("ffmpeg") is not None
