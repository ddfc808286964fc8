"""Gateway latency while jobs render: GET /api/jobs p50/p95/max, idle and with 2 jobs rendering.

Starts the real ``clipora serve`` twice in the same command, on loopback: with jobs in worker
processes (``CLIPORA_WORKERS=2``, the default layout) and, as the reference, with jobs in threads
of the gateway's own process (``CLIPORA_WORKERS=0``, ``CLIPORA_CONCURRENCY=2``, how it was before).
For each: signs up, makes a key, samples GET /api/jobs while idle, submits two 2-clip jobs and
samples again while both are processing (one request at a time, 20 ms apart).

    python -m benchmarks.gateway_latency [--quick]
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from benchmarks.common import ROOT, Recorder, harness_main, machine_line, md_table

NAME = "gateway_latency"
VIDEO = ROOT / "tests" / "media" / "speech_topics.mp4"
OPTIONS = '{"numClips":2,"clipLength":"medium","captionPreset":"beasty"}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(data: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "clipora", "serve", "--port", str(port), "--data-dir", str(data)],
                            env={**os.environ, "PYTHONPATH": str(ROOT), **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not start")


async def sample(s: aiohttp.ClientSession, url: str, key: str, until) -> list[float]:
    out = []
    while not await until():
        t0 = time.perf_counter()
        async with s.get(f"{url}/api/jobs", headers={"X-API-Key": key}) as r:
            await r.read()
            assert r.status == 200
        out.append((time.perf_counter() - t0) * 1000)
        await asyncio.sleep(0.02)
    return out


def stats(ms: list[float]) -> dict[str, float]:
    a = np.array(ms)
    return {"n": len(ms), "p50_ms": float(np.percentile(a, 50)), "p95_ms": float(np.percentile(a, 95)),
            "max_ms": float(a.max())}


async def measure(url: str, idle_s: float) -> dict[str, Any]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:  # cookies of 127.0.0.1
        async with s.post(f"{url}/api/auth/signup", json={"email": "bench@example.com",
                                                          "password": "a long passphrase 42"}) as r:
            assert r.status in (200, 201), await r.text()
        async with s.post(f"{url}/api/keys", json={"name": "bench"}, headers={"Origin": url}) as r:
            key = (await r.json())["key"]
        t_idle = time.monotonic() + idle_s

        async def idle_done() -> bool:
            return time.monotonic() > t_idle

        idle = await sample(s, url, key, idle_done)
        ids = []
        for _ in range(2):
            form = aiohttp.FormData()
            form.add_field("video", VIDEO.read_bytes(), filename=VIDEO.name, content_type="video/mp4")
            form.add_field("options", OPTIONS)
            async with s.post(f"{url}/api/upload", data=form, headers={"X-API-Key": key}) as r:
                ids.append((await r.json())["jobId"])

        async def states() -> list[dict[str, Any]]:
            out = []
            for job_id in ids:
                async with s.get(f"{url}/api/jobs/{job_id}", headers={"X-API-Key": key}) as r:
                    out.append(await r.json())
            return out

        while not all(j["status"] == "processing" for j in await states()):  # both leased (2 runners)
            await asyncio.sleep(0.05)

        async def one_ended() -> bool:
            return any(j["status"] in ("completed", "failed") for j in await states())

        t0 = time.monotonic()
        busy = await sample(s, url, key, one_ended)
        busy_s = time.monotonic() - t0
        while not all(j["status"] in ("completed", "failed") for j in await states()):
            await asyncio.sleep(0.2)
        final = await states()
    return {"idle": stats(idle), "two_jobs_running": stats(busy), "busy_window_s": busy_s,
            "jobs": [j["status"] for j in final]}


def run(quick: bool = False) -> dict[str, Any]:
    rec = Recorder(NAME, quick, {"video": VIDEO.name, "options": OPTIONS, "sample_interval_s": 0.02})
    results: dict[str, Any] = {}
    layouts = {
        "worker_processes": {"CLIPORA_WORKERS": "2", "CLIPORA_CONCURRENCY": "1"},
        "gateway_threads": {"CLIPORA_WORKERS": "0", "CLIPORA_CONCURRENCY": "2"},
    }
    for name, env in layouts.items():
        with tempfile.TemporaryDirectory(prefix="clipora-latency-") as tmp:
            proc, url = start(Path(tmp) / "data", {**env, "CLIPORA_THREADS": "2",
                                                   "XDG_CACHE_HOME": str(Path(tmp) / "cache")})
            try:
                time.sleep(2.0 if quick else 8.0)  # let the workers load their models
                results[name] = asyncio.run(measure(url, 3.0 if quick else 10.0))
            finally:
                proc.terminate()
                proc.wait(timeout=60)
        print(f"[{NAME}] {name}: {results[name]}", file=sys.stderr, flush=True)
    return rec.save(results)


def table(data: dict[str, Any]) -> str:
    r = data["results"]
    rows = []
    for name, label in (("worker_processes", "worker processes (CLIPORA_WORKERS=2)"),
                        ("gateway_threads", "threads of the gateway (CLIPORA_WORKERS=0, reference)")):
        for phase, what in (("idle", "idle"), ("two_jobs_running", "2 jobs rendering")):
            x = r[name][phase]
            rows.append((label, what, x["n"], f"{x['p50_ms']:.1f}", f"**{x['p95_ms']:.1f}**", f"{x['max_ms']:.1f}"))
    return md_table(("jobs run in", "while", "requests", "p50 ms", "p95 ms", "max ms"), rows) + "\n\n" + \
        machine_line(data)


def main(argv: list[str] | None = None) -> None:
    harness_main(__doc__, run, table, argv)


if __name__ == "__main__":
    main()
