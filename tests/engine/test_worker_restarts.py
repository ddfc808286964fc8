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


async def _restart_delays(code: str, restarts: int, base_s: float = 0.05) -> list[float]:
    """Run one supervised slot until it has been restarted ``restarts`` times; the delays it chose."""
    executor = ProcessExecutor(None, EventBus(), [sys.executable, "-c", code], 1,  # type: ignore[arg-type]
                               ExecutorConfig(), restart_backoff_s=base_s)
    task = asyncio.create_task(executor._supervise(0))
    try:
        async with asyncio.timeout(60):
            while len(executor.restart_delays.get(0, [])) < restarts:
                await asyncio.sleep(0.01)
    finally:
        executor._stopping = True
        task.cancel()
        last = executor.procs[0]
        if last.returncode is None:
            last.kill()
        await last.wait()
    return executor.restart_delays[0][:restarts]


async def test_a_crash_loop_backs_off_and_a_serving_worker_restarts_at_once():
    # judged on the delays the supervisor chose, not on wall-clock gaps: on a loaded machine a process
    # start alone can take half a second, which made gap ratios flaky (CI read 0.39 .. 0.72 s gaps)
    looping = await _restart_delays(EXIT_AT_ONCE, 5)
    assert looping == [0.05, 0.1, 0.2, 0.4, 0.8]
    serving = await _restart_delays(READY_THEN_EXIT, 4)
    assert serving == [0.05] * 4  # it was ready each time: never a crash loop


async def test_a_worker_that_comes_up_after_crashing_is_no_longer_backed_off(tmp_path):
    # crashes twice before it is ready (a dependency not up yet), then serves and is killed twice
    starts = tmp_path / "starts"
    code = (f"import os, pathlib; p = pathlib.Path({str(starts)!r}); n = len(p.read_text()) if p.exists() else 0; "
            "p.write_text('x' * (n + 1)); "
            "raise SystemExit(3) if n < 2 else os.write(int(os.environ['CLIPORA_READY_FD']), b'ready')")
    assert await _restart_delays(code, 4) == [0.05, 0.1, 0.05, 0.05]
