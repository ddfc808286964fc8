"""The shape of every job (DESIGN.md section 2), in the engine's vocabulary.

A job runs in three phases:

- **analysis**: steps (probe, audio, transcribe, ...), each run once the steps it needs are done
  (by default every step before it), so independent ones run side by side; the last one's result
  is the job's :class:`~engine.types.JobPlan`, one :class:`~engine.types.ClipPlan` per clip;
- **clips**: for each ClipPlan, one independent *unit* of steps (faces, reframe, captions,
  render, poster) that any worker can run given the plan; it ends in a ClipResult;
- **finalize**: one step over the plan and every ClipResult (the manifest), after which the
  engine publishes the clips' files and the manifest by atomic rename.

A clip re-render runs a second graph over the same stages (``Pipeline.run_edit``): its analysis
plans the one edited clip from the finished job's cached results, its clip unit is the job's, and
its finalize step makes that clip's manifest entry, which the engine publishes as a new version.

A :class:`Step` names the stage that fills it and how its request is built from what the job
knows so far (a :class:`Scope`). The composition root declares the steps; the engine
(``engine.pipeline``) runs them: caching each result keyed by step and inputs, progress, the
workdir of each unit. Nothing here knows a concrete stage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.edits import ClipEdit
from engine.options import ProcessOptions
from engine.stage import Resources, Stage
from engine.types import ClipPlan, ClipResult, JobPlan


@dataclass(frozen=True)
class JobInput:
    """What a job starts from. A clip re-render also names the clip and the (accumulated) edit."""

    job_id: str
    source: Path
    options: ProcessOptions
    clip: int | None = None  # 1-based, re-renders only
    edit: ClipEdit | None = None


@dataclass
class Scope:
    """What a step's request may be built from: the job, earlier results, and where to write.

    ``scope["transcribe"]`` is that step's result: this clip unit's steps first, then the
    analysis phase's. ``workdir`` is the folder the step's stage may write into (the unit's own
    folder under the job's workdir).
    """

    job: JobInput
    workdir: Path
    results: dict[str, Any] = field(default_factory=dict)
    plan: JobPlan | None = None
    clip: ClipPlan | None = None
    clip_results: dict[str, Any] = field(default_factory=dict)
    units: tuple[ClipResult, ...] = ()
    #: the version a clip re-render publishes (2 for the first re-render); 0 in a whole job
    version: int = 0

    def __getitem__(self, name: str) -> Any:
        if name in self.clip_results:
            return self.clip_results[name]
        return self.results[name]

    @property
    def options(self) -> ProcessOptions:
        return self.job.options

    @property
    def job_plan(self) -> JobPlan:
        """The analysis phase's plan (clip units and finalize)."""
        if self.plan is None:
            raise LookupError("no job plan yet: the analysis phase is still running")
        return self.plan

    @property
    def clip_plan(self) -> ClipPlan:
        """This unit's clip (clip units only)."""
        if self.clip is None:
            raise LookupError("not in a clip unit")
        return self.clip

    def path(self, name: str) -> Path:
        """A file of this unit, under its workdir."""
        return self.workdir / name


@dataclass(frozen=True)
class Step:
    """One step of a phase: the stage that fills it and how its request is built.

    ``weight`` is its share of its phase's progress; ``cache`` keeps its result (JSON) so a
    retried job reuses it when the request is the same; ``report`` False keeps a helper step
    (a quick survey) out of the progress events.

    ``needs`` (analysis steps only) names the earlier steps whose results its request reads, or
    gives them for the job's options (a step that reads one only for some options); ``None``, the
    default, is every step before it. A step runs once what it needs is done, beside the steps
    still running: a survey that needs only the probe runs while the audio decodes. A clip unit's
    steps run one after the other.
    """

    name: str
    stage: Stage[Any, Any]
    request: Callable[[Scope], Any]
    weight: float = 1.0
    cache: bool = True
    report: bool = True
    needs: tuple[str, ...] | Callable[[ProcessOptions], tuple[str, ...]] | None = None


@dataclass(frozen=True)
class JobGraph:
    analysis: tuple[Step, ...]  # the last step's result is the JobPlan
    clip: tuple[Step, ...]
    #: a clip unit's result from its scope (which files it made, how long it is, how it was framed)
    clip_result: Callable[[Scope], ClipResult]
    finalize: Step  # its result is the manifest (a dict); its stage writes manifest.json into its workdir
    #: progress weights: the analysis steps' own, then the clips phase and finalize
    clips_weight: float = 1.0
    #: what the graph's steps make, as a version: part of every cache key, so a job retried after an
    #: upgrade that changed a step's files or results (new caption files, joined words) recomputes
    #: instead of reusing what an earlier build cached (bump it with such a change)
    version: str = "1"

    def steps(self) -> Iterator[Step]:
        yield from self.analysis
        yield from self.clip
        yield self.finalize

    def stages(self) -> list[Stage[Any, Any]]:
        """Each distinct stage once (a stage may fill several steps)."""
        seen: dict[int, Stage[Any, Any]] = {}
        for step in self.steps():
            seen.setdefault(id(step.stage), step.stage)
        return list(seen.values())

    def clip_resources(self) -> Resources:
        """What one clip unit occupies while it runs (its steps run one after the other)."""
        out = Resources(cpus=0.0)
        for step in self.clip:
            out = out.most(step.stage.resources)
        return out

    def progress_weights(self) -> list[tuple[str, float]]:
        return ([(s.name, s.weight) for s in self.analysis if s.report]
                + [("clips", self.clips_weight), (self.finalize.name, self.finalize.weight)])


def step_needs(steps: Sequence[Step], options: ProcessOptions) -> dict[str, tuple[str, ...]]:
    """Each step's name -> the steps it waits for: its ``needs`` (for ``options``), or every step before it.

    A step may need only steps before it in the phase (so the phase is acyclic and its order is one
    the steps can run in, one at a time).
    """
    out: dict[str, tuple[str, ...]] = {}
    for i, step in enumerate(steps):
        earlier = [s.name for s in steps[:i]]
        needs = step.needs(options) if callable(step.needs) else step.needs
        if needs is None:
            out[step.name] = tuple(earlier)
            continue
        wrong = [n for n in needs if n not in earlier]
        if wrong:
            raise ValueError(f"step {step.name!r} needs {', '.join(map(repr, wrong))}, not a step before it")
        out[step.name] = tuple(dict.fromkeys(needs))
    return out
