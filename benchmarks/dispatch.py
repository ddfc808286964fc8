"""Dispatch latency on PostgreSQL: a job queued through one gateway, leased by a dispatcher.

Two dispatchers (``InProcessExecutor``, one each, as two gateways' worker processes run), each on
its own connection pool, share a fresh schema of the local PostgreSQL (127.0.0.1:5432/test);
jobs are created one at a time through a third pool, 0.1-0.3 s apart (seeded), with a job function
that only records when it started. Latency = the job function's start - the moment before the
INSERT. Measured twice in one command: with LISTEN/NOTIFY (the default) and with polling only
(``ExecutorConfig.listen=False``, what a pooler that cannot LISTEN leaves), both at the default
``poll_s`` of 1 s. p50/p95/max per mode.

Then **through two real gateways**: two ``clipora serve`` processes (one worker process each, the
default layout) on a fresh database of the same PostgreSQL server and one data folder; ``--gateway-jobs``
short jobs (20: 2 s of ``face_static.mp4``, one clip, no captions) uploaded one at a time, alternately
to each gateway, each once the one before has ended (so a worker waits idle, as LISTEN/NOTIFY serves
it); one job per gateway first, not counted (the workers' models load). Latency = the job's first
progress event (its first stage running, the worker's clock: ``job_events.ts``) - the job row's
``created_at`` (the gateway's clock; one machine, one clock).

    python -m benchmarks.dispatch [--quick] [--jobs N] [--gateway-jobs N]
"""

from __future__ import annotations

import asyncio
import random
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, Recorder, harness_main, machine_line, md_table

NAME = "dispatch"
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


async def _measure(jobs: int, listen: bool, seed: int) -> list[float]:
    from sqlalchemy import event, text

    from engine.db import Database
    from engine.events import EventBus
    from engine.executor import ExecutorConfig, InProcessExecutor
    from engine.store import JobStore, now_ms
    from http_gateway.models import User

    schema = f"bench_{secrets.token_hex(5)}"
    admin = Database(PG_URL)
    async with admin.engine.begin() as conn:
        await conn.execute(text(f"CREATE SCHEMA {schema}"))
    made: list[Database] = []

    def database() -> Database:
        db = Database(PG_URL)

        @event.listens_for(db.engine.sync_engine, "connect")
        def _path(dbapi_conn: Any, _rec: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute(f"SET search_path TO {schema}")
            cur.close()
            dbapi_conn.commit()

        made.append(db)
        return db

    started: dict[str, float] = {}

    def run(job: Any, *_: Any) -> dict[str, Any]:
        started[job.id] = time.time()
        return {"clipCount": 0}

    tmp = Path(tempfile.mkdtemp(prefix="clipora-dispatch-"))
    executors = []
    try:
        submit = database()
        await submit.migrate()
        async with submit.session() as s, s.begin():
            s.add(User(id="u1", email="u1@example.com", password_hash="x", plan="free", created_at=now_ms()))
        config = ExecutorConfig(listen=listen)
        for _ in range(2):
            ex = InProcessExecutor(JobStore(database()), run, lambda job: (tmp, tmp, tmp), EventBus(), config,
                                   embedded=False)
            await ex.start()
            executors.append(ex)
        await asyncio.sleep(1.5)  # both dispatchers idle, waiting
        store = JobStore(submit)
        rng = random.Random(seed)
        queued: dict[str, float] = {}
        for i in range(jobs):
            job_id = f"job{i:04d}"
            queued[job_id] = time.time()
            await store.create(job_id, "u1", "a.mp4", 1, {})
            await asyncio.sleep(rng.uniform(0.1, 0.3))
        deadline = time.monotonic() + 10
        while len(started) < jobs and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return [started[j] - queued[j] for j in queued if j in started]
    finally:
        for ex in executors:
            await ex.stop()
        for db in made:
            await db.close()
        async with admin.engine.begin() as conn:
            await conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        await admin.close()


GATEWAY_VIDEO = ROOT / "tests" / "media" / "face_static.mp4"
GATEWAY_OPTIONS = '{"mode":"none","trimEnd":2,"captionPreset":"none","aspectRatio":"1:1"}'


async def _through_gateways(jobs: int) -> list[float]:
    """Queued (the row's created_at) -> first stage running (the first progress event), two gateways."""
    import aiohttp
    from sqlalchemy import select, text

    from benchmarks.gateway_latency import start
    from engine.db import Database
    from engine.store import EventRow, JobRow

    name = f"bench_{secrets.token_hex(5)}"
    admin = Database(PG_URL)
    async with admin.engine.connect() as conn:
        await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(text(f"CREATE DATABASE {name}"))
    url = PG_URL.rsplit("/", 1)[0] + f"/{name}"
    tmp = Path(tempfile.mkdtemp(prefix="clipora-dispatch-gw-"))
    env = {"CLIPORA_DATABASE_URL": url, "CLIPORA_WORKERS": "1", "CLIPORA_THREADS": "2",
           "XDG_CACHE_HOME": str(tmp / "cache")}
    gateways = []
    try:
        for _ in range(2):
            gateways.append(start(tmp / "data", env))
        urls = [u for _, u in gateways]
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            async with s.post(f"{urls[0]}/api/auth/signup", json={"email": "bench@example.com",
                                                                  "password": "a long passphrase 42"}) as r:
                assert r.status in (200, 201), await r.text()
            async with s.post(f"{urls[0]}/api/keys", json={"name": "bench"}, headers={"Origin": urls[0]}) as r:
                key = (await r.json())["key"]
            ids = []
            for i in range(jobs + 2):  # the first one on each gateway warms its worker up
                base = urls[i % 2]
                form = aiohttp.FormData()
                form.add_field("video", GATEWAY_VIDEO.read_bytes(), filename=GATEWAY_VIDEO.name,
                               content_type="video/mp4")
                form.add_field("options", GATEWAY_OPTIONS)
                async with s.post(f"{base}/api/upload", data=form, headers={"X-API-Key": key}) as r:
                    job_id = (await r.json())["jobId"]
                while True:
                    async with s.get(f"{base}/api/jobs/{job_id}", headers={"X-API-Key": key}) as r:
                        job = await r.json()
                    if job["status"] in ("completed", "failed"):
                        break
                    await asyncio.sleep(0.1)
                assert job["status"] == "completed", job
                ids.append(job_id)
        db = Database(url)
        try:
            async with db.session() as session:
                created = dict((await session.execute(
                    select(JobRow.id, JobRow.created_at).where(JobRow.id.in_(ids[2:])))).all())
                events = (await session.execute(select(EventRow.job_id, EventRow.event)
                                                .where(EventRow.job_id.in_(ids[2:])).order_by(EventRow.id))).all()
        finally:
            await db.close()
        first: dict[str, float] = {}
        for job_id, event in events:
            if event["type"] == "progress" and job_id not in first:
                first[job_id] = float(event["ts"])
        return [first[j] - created[j] / 1000 for j in ids[2:]]
    finally:
        for proc, _ in gateways:
            proc.terminate()
            proc.wait(timeout=60)
        async with admin.engine.connect() as conn:
            await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(
                text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        await admin.close()


def _summary(lat: list[float]) -> dict[str, Any]:
    ms = sorted(x * 1000 for x in lat)
    q = statistics.quantiles(ms, n=20, method="inclusive") if len(ms) >= 2 else ms * 19  # within [min, max]
    return {"n": len(ms), "p50_ms": statistics.median(ms), "p95_ms": q[18], "max_ms": ms[-1], "raw_ms": ms}


def run(quick: bool = False, jobs: int | None = None, gateway_jobs: int | None = None) -> dict[str, Any]:
    n = jobs or (10 if quick else 40)
    g = gateway_jobs or (6 if quick else 20)
    rec = Recorder(NAME, quick, {"jobs": n, "dispatchers": 2, "poll_s": 1.0, "gap_s": [0.1, 0.3],
                                 "gateway_jobs": g, "gateway_video": GATEWAY_VIDEO.name,
                                 "gateway_options": GATEWAY_OPTIONS})
    results = {"listen": _summary(asyncio.run(_measure(n, True, 1))),
               "poll": _summary(asyncio.run(_measure(n, False, 1))),
               "gateways": _summary(asyncio.run(_through_gateways(g)))}
    return rec.save(results, ["PostgreSQL on loopback, same machine as the dispatchers and gateways."])


def table(data: dict[str, Any]) -> str:
    r = data["results"]
    rows = [(label, r[key]["n"], f"{r[key]['p50_ms']:.1f}", f"**{r[key]['p95_ms']:.1f}**", f"{r[key]['max_ms']:.1f}")
            for label, key in (("LISTEN/NOTIFY (default)", "listen"), ("polling only, every 1 s", "poll"))]
    ratio = r["poll"]["p50_ms"] / max(r["listen"]["p50_ms"], 1e-6)
    out = (md_table(("queued -> leased and started", "jobs", "p50 ms", "p95 ms", "max ms"), rows)
           + f"\n\nPolling's median is {ratio:.0f}x LISTEN/NOTIFY's.\n\n")
    if "gateways" in r:
        x = r["gateways"]
        out += md_table(("queued -> first stage running", "jobs", "p50 ms", "p95 ms", "max ms"), [
            ("two `clipora serve` gateways, one worker process each", x["n"], f"{x['p50_ms']:.1f}",
             f"**{x['p95_ms']:.1f}**", f"{x['max_ms']:.1f}")]) + "\n\n"
    return out + machine_line(data)


def main(argv: list[str] | None = None) -> None:
    harness_main(__doc__, run, table, argv, ("--jobs", int), ("--gateway-jobs", int))


if __name__ == "__main__":
    main()
