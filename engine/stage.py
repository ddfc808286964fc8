"""The Stage contract (in the spirit of NeMo Curator's ProcessingStage).

A stage is a class with a ``name``, the ``resources`` one running instance needs and a
``batch_size``; ``setup(ctx)`` loads models once per worker (the worker calls it, before the
stage's first ``process``; ``process`` never does), ``process(inputs, ctx)`` is pure with respect
to its inputs, ``teardown()`` frees (the worker calls it when it stops). A stage writes only
under ``ctx.workdir`` (the engine publishes outputs by atomic rename), logs through ``ctx.log``
(job id and stage on every record), reports through ``ctx.progress(fraction, message)``, checks
``ctx.check_cancelled()`` between units of work, and raises RetryableError / PermanentError for
expected failures.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from engine.backends import Backend
from engine.config import Settings
from engine.errors import JobCancelled

In = TypeVar("In")
Out = TypeVar("Out")


@dataclass(frozen=True, slots=True)
class Resources:
    """What one running instance of a stage occupies: CPU cores, GPU memory, and named custom
    resources (``{"nvdec": 1}``, ``{"nvenc": 1}``) that a cluster routes work by."""

    cpus: float = 1.0
    gpu_memory_gb: float = 0.0
    custom: tuple[tuple[str, float], ...] = ()

    def most(self, other: Resources) -> Resources:
        """Resources enough for either (a unit that runs two stages one after the other)."""
        named = dict(self.custom)
        for k, v in other.custom:
            named[k] = max(named.get(k, 0.0), v)
        return Resources(max(self.cpus, other.cpus), max(self.gpu_memory_gb, other.gpu_memory_gb),
                         tuple(sorted(named.items())))

    def fits(self, cpus: float, gpu_memory_gb: float = 0.0) -> int:
        """How many instances fit at once in ``cpus`` cores (and that much GPU memory); at least 1."""
        n = int(cpus // self.cpus) if self.cpus > 0 else 1 << 16
        if self.gpu_memory_gb > 0:
            n = min(n, int(gpu_memory_gb // self.gpu_memory_gb))
        return max(1, n)


@dataclass
class StageContext:
    """What a running stage may touch: its job's workdir, settings, backend and progress."""

    job_id: str
    workdir: Path
    settings: Settings
    backend: Backend
    report: Callable[[str, float, str], None] = lambda stage, fraction, message: None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    stage: str = ""
    log: logging.LoggerAdapter[logging.Logger] = field(init=False)

    def __post_init__(self) -> None:
        self.log = logging.LoggerAdapter(logging.getLogger("clipora"), {"job_id": self.job_id})

    def for_stage(self, name: str, workdir: Path | None = None, settings: Settings | None = None) -> StageContext:
        """This context for one step: its stage name on every log record, its own workdir (and settings)."""
        ctx = StageContext(
            job_id=self.job_id,
            workdir=self.workdir if workdir is None else workdir,
            settings=self.settings if settings is None else settings,
            backend=self.backend,
            report=self.report,
            cancel_event=self.cancel_event,
            stage=name,
        )
        ctx.log = logging.LoggerAdapter(
            logging.getLogger("clipora"), {"job_id": self.job_id, "stage": name}
        )
        return ctx

    def progress(self, fraction: float, message: str = "") -> None:
        """Report this stage's own progress in [0, 1]."""
        self.report(self.stage, min(1.0, max(0.0, float(fraction))), message)

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def check_cancelled(self) -> None:
        if self.cancel_event.is_set():
            raise JobCancelled()


class Stage(ABC, Generic[In, Out]):
    """One step of the pipeline. Subclasses set ``name`` and implement ``process``."""

    name: str = "stage"
    #: every stage says what it needs (the executor reads it); ``Resources()`` is one core
    resources: Resources = Resources()
    batch_size: int = 1

    def setup(self, ctx: StageContext) -> None:  # noqa: B027 - optional hook
        """Load models or other per-worker state once."""

    @abstractmethod
    def process(self, inputs: In, ctx: StageContext) -> Out:
        """Turn inputs into outputs; idempotent and safe to retry."""

    def teardown(self) -> None:  # noqa: B027 - optional hook
        """Free what setup loaded."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

