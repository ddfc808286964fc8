"""ProcessExecutor's restart policy: a worker that dies before it is ready is a crash loop and is
restarted after growing delays; one that was ready and serving is restarted after the base delay,
however often it is killed (the crash suite kills a serving worker ten times in a row)."""

from __future__ import annotations

import asyncio
import sys

from engine.events import EventBus
from engine.executor import ExecutorConfig
from engine.workers import ProcessExecutor

READY_THEN_EXIT = "import os, time; os.write(int(os.environ['CLIPORA_READY_FD']), b'ready'); time.sleep(0.2)"
EXIT_AT_ONCE = "raise SystemExit(3)"


async def _start_times(code: str, starts: int, base_s: float = 0.1) -> list[float]:
    executor = ProcessExecutor(None, EventBus(), [sys.executable, "-c", code], 1,  # type: ignore[arg-type]
                               ExecutorConfig(), restart_backoff_s=base_s)
    loop = asyncio.get_running_loop()
    times: list[float] = []
    task = asyncio.create_task(executor._supervise(0))
    seen = None
    while len(times) < starts:
        proc = executor.procs.get(0)
        if proc is not None and proc is not seen:
            seen = proc
            times.append(loop.time())
        await asyncio.sleep(0.01)
    executor._stopping = True
    task.cancel()
    last = executor.procs[0]
    if last.returncode is None:
        last.kill()
    await last.wait()
    return times


def _gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:], strict=False)]


async def test_a_crash_loop_backs_off_and_a_serving_worker_restarts_at_once():
    looping = _gaps(await _start_times(EXIT_AT_ONCE, 5))
    serving = _gaps(await _start_times(READY_THEN_EXIT, 5))
    # a process start costs ~0.05 s; delays of 0.1, 0.2, 0.4, 0.8 s come on top while crash-looping
    assert looping[-1] > 0.7 and looping[-1] > 2.5 * looping[0], looping
    # ready, then gone: the base delay (0.1 s) plus its 0.2 s of life each time, never growing. Relative
    # bounds only: on a loaded machine a process start alone can take half a second (CI read 0.73 s gaps)
    assert max(serving) < 1.6 * min(serving) and max(serving) < looping[-1], (serving, looping)
