"""Load on loopback: pollers, WebSocket subscribers and uploads at once while a job renders.

Starts the real ``clipora serve`` (the default layout: one worker process) and, for ``--seconds``
(60; 15 with ``--quick``), keeps up at the same time:

- one real job rendering (``speech_topics.mp4``, 2 medium clips, beasty captions), started first;
- 200 WebSocket subscribers of that job (connected before the window, every progress event
  delivered to each; ``CLIPORA_MAX_SOCKETS_PER_USER`` is raised to 250 for it: one account
  holds them all);
- 50 pollers, each GET /api/jobs/{id} of that job then GET /api/jobs, then 0.5 s of rest;
- 4 uploaders, each uploading ``speech_topics.mp4`` (848 KB, probed for real) and deleting the job
  it made, back to back, so there are always 4 uploads in flight and no account fills its queue.

Reports per kind of request the count, p50/p99/max latency and errors (any status other than the
one expected, or a failed connection), WebSocket connect times, events delivered and sockets
dropped. A benchmark, never a timed test: the figures go to BENCHMARKS.md.

    python -m benchmarks.load [--quick] [--seconds N]
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from benchmarks.common import Recorder, harness_main, machine_line, md_table
from benchmarks.gateway_latency import OPTIONS, VIDEO, start

NAME = "load"
POLLERS, SUBSCRIBERS, UPLOADERS = 50, 200, 4
POLL_REST_S = 0.5


class Tally:
    def __init__(self) -> None:
        self.ms: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)

    def add(self, kind: str, ms: float, error: str | None = None) -> None:
        self.ms[kind].append(ms)
        if error:
            self.errors[kind].append(error)

    def summary(self) -> dict[str, Any]:
        out = {}
        for kind, values in sorted(self.ms.items()):
            a = np.array(values)
            out[kind] = {"n": len(values), "p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
                         "max_ms": float(a.max()), "errors": len(self.errors[kind]),
                         "error_samples": sorted(set(self.errors[kind]))[:5]}
        return out


async def _timed(tally: Tally, kind: str, expect: int, call) -> Any:
    t0 = time.perf_counter()
    try:
        async with call() as r:
            body = await r.read()
            ms = (time.perf_counter() - t0) * 1000
            tally.add(kind, ms, None if r.status == expect else f"{r.status} {body[:120]!r}")
            return r.status, body
    except (TimeoutError, aiohttp.ClientError) as exc:
        tally.add(kind, (time.perf_counter() - t0) * 1000, type(exc).__name__)
        return None, b""


async def _account(s: aiohttp.ClientSession, url: str, email: str) -> str:
    async with s.post(f"{url}/api/auth/signup", json={"email": email, "password": "a long passphrase 42"},
                      headers={"Origin": url}) as r:
        assert r.status == 201, await r.text()
        cookie = r.cookies["reels_session"].value
    async with s.post(f"{url}/api/keys", json={"name": "load"}, headers={"Origin": url},
                      cookies={"reels_session": cookie}) as r:
        return str((await r.json())["key"])


def _form() -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("video", VIDEO.read_bytes(), filename=VIDEO.name, content_type="video/mp4")
    form.add_field("options", OPTIONS)
    return form


async def measure(url: str, seconds: float) -> dict[str, Any]:
    tally = Tally()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()) as s:
        owner = await _account(s, url, "render@example.com")
        churn = await _account(s, url, "uploads@example.com")
        async with s.post(f"{url}/api/upload", data=_form(), headers={"X-API-Key": owner}) as r:
            job_id = (await r.json())["jobId"]
        key = {"X-API-Key": owner}

        # the subscribers, connected before the window opens
        events = [0] * SUBSCRIBERS
        dropped = [0]
        sockets = []
        for _ in range(SUBSCRIBERS):
            t0 = time.perf_counter()
            try:
                ws = await s.ws_connect(f"{url}/ws?jobId={job_id}", headers=key)
                tally.add("ws connect", (time.perf_counter() - t0) * 1000)
                sockets.append(ws)
            except aiohttp.ClientError as exc:
                tally.add("ws connect", (time.perf_counter() - t0) * 1000, type(exc).__name__)

        async def subscriber(i: int, ws: aiohttp.ClientWebSocketResponse) -> None:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    events[i] += 1
                    if '"type": "completed"' in msg.data or '"type": "failed"' in msg.data:
                        return
            if not ended.is_set():
                dropped[0] += 1  # closed by the server before the job ended or the window closed

        ended = asyncio.Event()
        window_end = time.monotonic() + seconds

        async def poller() -> None:
            while time.monotonic() < window_end:
                await _timed(tally, "GET /api/jobs/{id}", 200, lambda: s.get(f"{url}/api/jobs/{job_id}", headers=key))
                await _timed(tally, "GET /api/jobs", 200, lambda: s.get(f"{url}/api/jobs", headers=key))
                await asyncio.sleep(POLL_REST_S)

        async def uploader() -> None:
            while time.monotonic() < window_end:
                status, body = await _timed(tally, "POST /api/upload", 200, lambda: s.post(
                    f"{url}/api/upload", data=_form(), headers={"X-API-Key": churn}))
                if status == 200:
                    made = body.decode().split('"jobId": "')[1].split('"')[0]
                    await _timed(tally, "DELETE /api/jobs/{id}", 200, lambda made=made: s.delete(
                        f"{url}/api/jobs/{made}", headers={"X-API-Key": churn}))

        readers = [asyncio.create_task(subscriber(i, ws)) for i, ws in enumerate(sockets)]
        t0 = time.monotonic()
        await asyncio.gather(*(poller() for _ in range(POLLERS)), *(uploader() for _ in range(UPLOADERS)))
        window = time.monotonic() - t0
        async with s.get(f"{url}/api/jobs/{job_id}", headers=key) as r:
            job = await r.json()
        ended.set()
        for ws in sockets:
            await ws.close()
        await asyncio.gather(*readers, return_exceptions=True)
        async with s.get(f"{url}/metrics") as r:
            metrics = await r.text()
    server_5xx = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                     if line.startswith("clipora_http_requests_total{") and 'status="5' in line)
    return {"requests": tally.summary(), "window_s": window, "sockets": len(sockets), "ws_dropped": dropped[0],
            "ws_events_min": min(events) if events else 0, "ws_events_max": max(events) if events else 0,
            "job_status_at_end": job["status"], "job_progress_at_end": job["progress"], "server_5xx": server_5xx}


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def run(quick: bool = False, seconds: float | None = None) -> dict[str, Any]:
    seconds = seconds or (15.0 if quick else 60.0)
    rec = Recorder(NAME, quick, {"seconds": seconds, "pollers": POLLERS, "subscribers": SUBSCRIBERS,
                                 "uploaders": UPLOADERS, "poll_rest_s": POLL_REST_S, "video": VIDEO.name,
                                 "options": OPTIONS})
    with tempfile.TemporaryDirectory(prefix="clipora-load-") as tmp:
        proc, url = start(Path(tmp) / "data", {"CLIPORA_THREADS": "2", "XDG_CACHE_HOME": str(Path(tmp) / "cache"),
                                               "CLIPORA_MAX_SOCKETS_PER_USER": "250"})
        try:
            time.sleep(2.0 if quick else 8.0)  # let the worker load its models
            cpu0, t0 = _cpu_s(proc.pid), time.monotonic()
            results = asyncio.run(measure(url, seconds))
            # the gateway's own process (not its worker or probe children): how busy was its one loop
            results["gateway_cpu_per_s"] = (_cpu_s(proc.pid) - cpu0) / (time.monotonic() - t0)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    print(f"[{NAME}] {results}", file=sys.stderr, flush=True)
    return rec.save(results)


def table(data: dict[str, Any]) -> str:
    r = data["results"]
    rows = [(kind, x["n"], f"{x['p50_ms']:.1f}", f"**{x['p99_ms']:.1f}**", f"{x['max_ms']:.1f}", x["errors"])
            for kind, x in r["requests"].items()]
    head = md_table(("request", "count", "p50 ms", "p99 ms", "max ms", "errors"), rows)
    return (f"{head}\n\n{r['sockets']} WebSockets open through the {r['window_s']:.0f} s window, "
            f"{r['ws_dropped']} dropped, {r['ws_events_min']}–{r['ws_events_max']} events each; "
            f"server 5xx: {r['server_5xx']:.0f}; the gateway's process used "
            f"{r.get('gateway_cpu_per_s', float('nan')):.2f} CPU s per s; the rendering job ended the window "
            f"{r['job_status_at_end']} at {r['job_progress_at_end']:.0%}.\n\n" + machine_line(data))


def main(argv: list[str] | None = None) -> None:
    harness_main(__doc__, run, table, argv, ("--seconds", float))


if __name__ == "__main__":
    main()
