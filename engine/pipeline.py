"""Running stages: progress weighting, cached analysis, bounded retries, events.

The job graph itself (which stage feeds which) is wired by the composition root
(``clipora.compose``), because the engine never imports a concrete stage. What every
job shares lives here: ``StageRunner.run(stage, inputs, cache=...)`` sets the stage up
once, reports its progress as a share of the whole job, reuses a cached result from an
earlier attempt of the same job, and retries RetryableError a bounded number of times.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from engine.errors import RetryableError
from engine.events import EventBus, JobEvent
from engine.stage import Stage, StageContext
from engine.storage import write_json_atomic
from engine.types import from_jsonable, to_jsonable

Out = TypeVar("Out")
log = logging.getLogger("clipora.pipeline")


class ProgressPlan:
    """Maps (phase, part, fraction) to a whole-job fraction with fixed phase weights.

    ``parts`` splits a phase evenly (e.g. one part per clip), so a 3-clip render moves
    the bar by a third of the render weight per clip.
    """

    def __init__(self, weights: Sequence[tuple[str, float]]) -> None:
        total = sum(w for _, w in weights) or 1.0
        self._start: dict[str, float] = {}
        self._weight: dict[str, float] = {}
        acc = 0.0
        for name, w in weights:
            self._start[name] = acc / total
            self._weight[name] = w / total
            acc += w

    def overall(self, phase: str, fraction: float, part: int = 0, parts: int = 1) -> float:
        if phase not in self._start:
            return 0.0
        share = self._weight[phase] / max(parts, 1)
        return min(1.0, self._start[phase] + share * (part + min(max(fraction, 0.0), 1.0)))


class StageRunner:
    """Runs stages for one job and turns their progress into job events."""

    def __init__(
        self,
        job_id: str,
        ctx: StageContext,
        bus: EventBus,
        plan: ProgressPlan,
        retries: int = 2,
        min_event_interval: float = 0.1,
    ) -> None:
        self.job_id = job_id
        self.ctx = ctx
        self.bus = bus
        self.plan = plan
        self.retries = retries
        self._min_interval = min_event_interval
        self._last_emit = 0.0
        self._last_overall = 0.0
        self._lock = threading.Lock()
        self._ready: set[int] = set()
        self.cache_dir = Path(ctx.workdir) / "analysis"

    def emit(self, stage: str, fraction: float, message: str, part: int = 0, parts: int = 1,
             force: bool = False, phase: str | None = None,
             within: tuple[float, float] = (0.0, 1.0)) -> None:
        """Publish a progress event for ``stage``; ``phase``/``within`` place it in the plan."""
        lo, hi = within
        mapped = lo + (hi - lo) * min(max(fraction, 0.0), 1.0)
        overall = max(self._last_overall, self.plan.overall(phase or stage, mapped, part, parts))
        now = time.monotonic()
        with self._lock:
            # Progress never goes backwards, and is rate-limited so a fast stage does
            # not flood subscribers; stage changes and the final 1.0 always pass.
            if not force and now - self._last_emit < self._min_interval and fraction < 1.0:
                return
            self._last_emit, self._last_overall = now, overall
        self.bus.publish(JobEvent(self.job_id, "progress", stage, overall, message))

    def run(self, stage: Stage[Any, Out], inputs: Any, *, cache: str | None = None,
            part: int = 0, parts: int = 1, phase: str | None = None,
            within: tuple[float, float] = (0.0, 1.0)) -> Out:
        """Run ``stage`` on ``inputs`` (or reuse the cached result named ``cache``).

        ``phase``, ``part``/``parts`` and ``within`` say where this run sits in the job's
        progress plan: e.g. the render of clip 2 of 3 is part 1 of 3 of phase "clips",
        covering the range ``within`` of that part.
        """
        where: dict[str, Any] = {"part": part, "parts": parts, "phase": phase, "within": within}
        cached = self._load(cache)
        if cached is not None:
            self.emit(stage.name, 1.0, "reused from an earlier attempt", force=True, **where)
            return cached
        ctx = self.ctx.for_stage(stage.name)
        ctx.report = lambda _s, f, m: self.emit(stage.name, f, m, **where)
        if id(stage) not in self._ready:
            stage.setup(ctx)
            self._ready.add(id(stage))
        self.emit(stage.name, 0.0, "started", force=True, **where)
        for attempt in Retrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=wait_exponential(multiplier=0.5, max=8),
            retry=retry_if_exception_type(RetryableError),
            reraise=True,
        ):
            with attempt:
                ctx.check_cancelled()
                result = stage.process(inputs, ctx)
        self._save(cache, result)
        return result

    def _load(self, key: str | None) -> Any:
        if key is None:
            return None
        path = self.cache_dir / f"{key}.json"
        if not path.is_file():
            return None
        try:
            value = from_jsonable(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring unreadable cache %s", path.name, extra={"job_id": self.job_id})
            return None
        return tuple(value) if isinstance(value, list) else value

    def _save(self, key: str | None, value: Any) -> None:
        if key is not None:
            write_json_atomic(self.cache_dir / f"{key}.json", to_jsonable(value))

    def teardown(self, stages: Sequence[Stage[Any, Any]]) -> None:
        for stage in stages:
            if id(stage) in self._ready:
                stage.teardown()
                self._ready.discard(id(stage))
