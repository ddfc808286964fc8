"""Dispatch latency on PostgreSQL: a job queued through one gateway, leased by a dispatcher.

Two dispatchers (``InProcessExecutor``, one each, as two gateways' worker processes run), each on
its own connection pool, share a fresh schema of the local PostgreSQL (127.0.0.1:5432/test);
jobs are created one at a time through a third pool, 0.1-0.3 s apart (seeded), with a job function
that only records when it started. Latency = the job function's start - the moment before the
INSERT. Measured twice in one command: with LISTEN/NOTIFY (the default) and with polling only
(``ExecutorConfig.listen=False``, what a pooler that cannot LISTEN leaves), both at the default
``poll_s`` of 1 s. p50/p95/max per mode.

    python -m benchmarks.dispatch [--quick] [--jobs N]
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

from benchmarks.common import Recorder, harness_main, machine_line, md_table

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


def _summary(lat: list[float]) -> dict[str, Any]:
    ms = sorted(x * 1000 for x in lat)
    q = statistics.quantiles(ms, n=20) if len(ms) >= 2 else ms * 19
    return {"n": len(ms), "p50_ms": statistics.median(ms), "p95_ms": q[18], "max_ms": ms[-1], "raw_ms": ms}


def run(quick: bool = False, jobs: int | None = None) -> dict[str, Any]:
    n = jobs or (10 if quick else 40)
    rec = Recorder(NAME, quick, {"jobs": n, "dispatchers": 2, "poll_s": 1.0, "gap_s": [0.1, 0.3]})
    results = {"listen": _summary(asyncio.run(_measure(n, True, 1))),
               "poll": _summary(asyncio.run(_measure(n, False, 1)))}
    return rec.save(results, ["PostgreSQL on loopback, same machine as the dispatchers."])


def table(data: dict[str, Any]) -> str:
    r = data["results"]
    rows = [(label, r[key]["n"], f"{r[key]['p50_ms']:.1f}", f"**{r[key]['p95_ms']:.1f}**", f"{r[key]['max_ms']:.1f}")
            for label, key in (("LISTEN/NOTIFY (default)", "listen"), ("polling only, every 1 s", "poll"))]
    ratio = r["poll"]["p50_ms"] / max(r["listen"]["p50_ms"], 1e-6)
    return (md_table(("queued -> leased and started", "jobs", "p50 ms", "p95 ms", "max ms"), rows)
            + f"\n\nPolling's median is {ratio:.0f}x LISTEN/NOTIFY's.\n\n" + machine_line(data))


def main(argv: list[str] | None = None) -> None:
    harness_main(__doc__, run, table, argv, ("--jobs", int))


if __name__ == "__main__":
    main()
