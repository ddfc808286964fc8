"""The Ray executor (``CLIPORA_EXECUTOR=ray``): a job's phases as Ray tasks, its clips fanned out.

The job row stays the source of truth. A worker process (``engine.workers``) leases the job as it
always does, renews the lease and closes the row; what it runs is :class:`RayJobRunner`, a job
function that drives a Ray cluster instead of running the graph in its own threads:

- the **analysis** unit as one task, then **each clip unit as its own task** (all submitted at
  once: a 10-clip job renders on as many nodes as fit it), then **finalize**; every task runs
  :meth:`engine.worker.Worker.run_phase` on the job's folders, which must be on storage every
  node mounts at the same path (the shared storage root), where each phase finds what the one
  before cached;
- each task asks Ray for the resources its stages declare (``Stage.resources``: ``num_cpus``,
  a GPU where GPU memory is declared, custom resources such as ``nvdec``/``nvenc`` by name);
- each node's stages live in one detached actor of that node (:class:`NodeStages`, made on
  first use, shared by every gateway's jobs): the task Ray schedules holds the phase's resources
  and runs the phase there, so a node loads its models once (``factory``, a ``module:function``
  of the composition root, builds the stages) and keeps them for every later job;
- a clip task lost with its node (or its worker process) is submitted again, up to
  ``unit_retries`` times, and says so in the job's events and, durably, in the job row's
  ``clip_retries`` (clip, try, attempt, node, reason; the job JSON's ``clipRetries``); an error of the job itself (a bad
  source) fails the job as it would anywhere; a Ray failure past the retries gives the attempt
  back to the executor's retry policy, never a job left ``processing``;
- progress events travel from the tasks through a queue actor on the driver's node and are
  published on the worker's bus (and so to the job store and every gateway), never backwards;
- while the cluster does not answer, :meth:`RayJobRunner.available` says so: the dispatcher takes
  no job (they wait in ``queued``) and the gateway's ``/readyz`` names the address.

A clip re-render (a job of its own, small) runs as one task of the whole job function.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.errors import JobCancelled, RetryableError
from engine.events import CLIP_RETRY, EventBus, JobEvent
from engine.graph import JobGraph, JobInput
from engine.jobs import JobRecord
from engine.options import ProcessOptions
from engine.stage import Resources

log = logging.getLogger("clipora.ray")

#: the file a clip task leaves in its unit's folder: "<Ray node id> running|done" (operators, tests)
NODE_FILE = ".ray-node"


def parse_address(address: str) -> tuple[str, int]:
    """``host:port`` of the Ray head's GCS (``CLIPORA_RAY_ADDRESS``)."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"CLIPORA_RAY_ADDRESS must be host:port, not {address!r}")
    return host, int(port)


def ray_options(res: Resources) -> dict[str, Any]:
    """Ray task options for what a phase's stages declare."""
    opts: dict[str, Any] = {"num_cpus": res.cpus, "max_retries": 0}
    if res.gpu_memory_gb > 0:
        opts["num_gpus"] = 1
    if res.custom:
        opts["resources"] = dict(res.custom)
    return opts


def analysis_resources(graph: JobGraph) -> Resources:
    out = Resources(cpus=0.0)
    for step in graph.analysis:
        out = out.most(step.stage.resources)
    return out


# -- inside a Ray worker process ----------------------------------------------------------------------

_RUNTIMES: dict[str, Any] = {}
_RUNTIMES_LOCK = threading.Lock()


def _runtime(factory: str) -> Any:
    """The composition root's (job function, worker) for this process, built once."""
    with _RUNTIMES_LOCK:
        if factory not in _RUNTIMES:
            module, _, name = factory.partition(":")
            _RUNTIMES[factory] = getattr(importlib.import_module(module), name)()
        return _RUNTIMES[factory]


def _forward(events: Any, bus: EventBus) -> None:
    def put(event: JobEvent) -> None:
        try:
            events.put_nowait((event.job_id, event.to_record()))
        except Exception:  # progress is best effort: the queue's node may be gone, the work goes on
            log.debug("could not forward a job event", exc_info=True)

    bus.subscribe(put)


def run_phase(factory: str, job: JobRecord, phase: str, index: int, paths: tuple[str, str, str],
              events: Any, cancel: threading.Event | None = None) -> Any:
    """A phase of a job (``analysis``, ``unit`` ``index``, ``finalize``) or a whole re-render, here."""
    import ray

    run, worker = _runtime(factory)
    source, out_dir, work_dir = (Path(p) for p in paths)
    cancel = cancel or threading.Event()
    bus = EventBus()
    _forward(events, bus)
    if phase == "render":
        return run(job, source, out_dir, work_dir, bus, cancel)
    job_input = JobInput(job.id, source, ProcessOptions.from_json(job.options))
    if phase != "unit":
        return worker.run_phase(job_input, phase, out_dir, bus, workdir=work_dir, index=index, cancel=cancel)
    marker = unit_marker(work_dir, index)
    marker.parent.mkdir(parents=True, exist_ok=True)
    node = ray.get_runtime_context().get_node_id()
    marker.write_text(f"{node} running\n")
    result = worker.run_phase(job_input, phase, out_dir, bus, workdir=work_dir, index=index, cancel=cancel)
    marker.write_text(f"{node} done\n")
    return result


def unit_marker(work_dir: Path, index: int) -> Path:
    """The file a clip unit's task leaves: "<Ray node id> running|done" (:data:`NODE_FILE`)."""
    return work_dir / "clips" / f"{index:02d}" / NODE_FILE


def unit_node(work_dir: Path, index: int) -> str | None:
    """The Ray node a clip unit last ran on (None before it started)."""
    try:
        return unit_marker(work_dir, index).read_text().split()[0]
    except (OSError, IndexError):
        return None


#: the name prefix of the per-node stages actors (``clipora-stages-<node id>``)
NODE_ACTOR = "clipora-stages-"


class NodeStages:
    """The process where one node's stages live: a detached actor per node, found by name.

    Every phase any gateway sends to the node runs here, in a thread of this one process, so the
    node's models (Whisper, the face detector, the speaker encoder) load once and serve every job.
    It holds no resources of its own (``num_cpus=0``): the task that calls it holds the phase's.
    """

    def __init__(self) -> None:
        self._flags: dict[tuple[str, int], tuple[threading.Event, int]] = {}
        self._lock = threading.Lock()

    def run(self, factory: str, job: JobRecord, phase: str, index: int, paths: tuple[str, str, str],
            events: Any) -> Any:
        key = (job.id, job.attempts)
        with self._lock:
            flag, users = self._flags.get(key, (threading.Event(), 0))
            self._flags[key] = (flag, users + 1)
        try:
            return run_phase(factory, job, phase, index, paths, events, flag)
        finally:
            with self._lock:
                flag, users = self._flags[key]
                if users <= 1:
                    del self._flags[key]
                else:
                    self._flags[key] = (flag, users - 1)

    def cancel(self, job_id: str, attempts: int) -> bool:
        """Stop that attempt's phases running here (at their next step); True if any was."""
        with self._lock:
            entry = self._flags.get((job_id, attempts))
        if entry is not None:
            entry[0].set()
        return entry is not None


def node_task(factory: str, job: JobRecord, phase: str, index: int, paths: tuple[str, str, str], events: Any) -> Any:
    """The Ray task of a phase: it holds the phase's resources on the node Ray chose and runs the phase
    in that node's :class:`NodeStages` (made on first use)."""
    import ray
    from ray.exceptions import RayTaskError
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    node = ray.get_runtime_context().get_node_id()
    actor: Any = ray.remote(NodeStages).options(
        name=NODE_ACTOR + node, get_if_exists=True, lifetime="detached", num_cpus=0, max_concurrency=64,
        # Ray starts an actor of num_cpus=0 with OMP_NUM_THREADS=1; this process serves every phase of the
        # node, as a worker process that owns the machine does, so its libraries get the machine's threads:
        # the same numbers as the in-process executor's (torch's reductions differ with the thread count)
        # (and glibc's malloc its arenas capped from the start, before Ray's own threads:
        # engine.heap.limit_malloc_arenas)
        runtime_env={"env_vars": {"OMP_NUM_THREADS": str(os.cpu_count() or 1),
                                  "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2")}},
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node, soft=False)).remote()
    ref = actor.run.remote(factory, job, phase, index, paths, events)
    # Wait outside Ray's blocking calls: a task in ray.get or ray.wait (even with a zero timeout) gives its
    # CPUs back to the node while it waits, and the node would start every other phase at once in the
    # actor. Waiting on the reference's future keeps this task's resources held while its phase runs.
    try:
        return ref.future().result()
    except RayTaskError as exc:  # the phase's own error: raise it as it was
        if isinstance(exc.cause, BaseException):
            raise exc.cause from None
        raise


# -- the driver: a worker process that leased the job ---------------------------------------------------


def _system_errors() -> tuple[type[BaseException], ...]:
    import ray.exceptions as rex

    names = ("WorkerCrashedError", "NodeDiedError", "ObjectLostError", "OwnerDiedError", "LocalRayletDiedError",
             "RaySystemError", "ObjectReconstructionFailedError", "ActorDiedError", "ActorUnavailableError")
    return tuple(getattr(rex, n) for n in names if hasattr(rex, n))


class RayJobRunner:
    """A job function (engine.executor.JobFunction) that runs a job's phases on a Ray cluster."""

    def __init__(self, address: str, factory: str, graph: JobGraph, *, unit_retries: int = 2,
                 namespace: str = "clipora", poll_s: float = 0.2) -> None:
        self.address = address
        self.host, self.port = parse_address(address)
        self.factory = factory
        self.analysis_res = analysis_resources(graph)
        self.unit_res = graph.clip_resources()
        self.final_res = graph.finalize.stage.resources
        self.unit_retries = unit_retries
        self.namespace = namespace
        self.poll_s = poll_s
        self._lock = threading.Lock()
        self._task: Any = None
        self._pump: _Pump | None = None

    # -- connection -------------------------------------------------------------------------------

    def reachable(self, timeout_s: float = 1.0) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=timeout_s):
                return True
        except OSError:
            return False

    def available(self) -> str | None:
        """None when jobs can run; else why not (the dispatcher then leaves jobs queued).

        A connection whose node went away (the cluster's head killed, or this machine's raylet) is let
        go first, so that this process joins the cluster again once it answers: Ray never reconnects
        such a driver, and ends its process ~60 s after it lost the cluster unless it is shut down.
        """
        self._drop_if_lost()
        if not self.reachable():
            return f"the Ray cluster at {self.address} does not answer; jobs wait in the queue"
        try:
            self._connect()
        except Exception as exc:
            return f"could not join the Ray cluster at {self.address}: {exc}"
        return None

    def _connect(self) -> None:
        import ray

        with self._lock:
            if not ray.is_initialized():
                ray.init(address=self.address, namespace=self.namespace, log_to_driver=False,
                         ignore_reinit_error=True)
                log.info("joined the Ray cluster at %s", self.address)
            if self._task is None:
                self._task = ray.remote(node_task)

    def _drop_if_lost(self) -> bool:
        """Shut this driver's Ray connection down if its node's raylet is gone; True if it was."""
        import ray

        with self._lock:
            if not ray.is_initialized() or raylet_answers():
                return False
            log.warning("lost the Ray cluster at %s (this driver's raylet is gone); joining it again once it "
                        "answers", self.address)
            if self._pump is not None:
                self._pump.stop()
                self._pump = None
            self._task = None
            ray.shutdown()
            return True

    # -- one job ----------------------------------------------------------------------------------------

    def __call__(self, job: JobRecord, source: Path, out_dir: Path, work_dir: Path, bus: EventBus,
                 cancel: threading.Event) -> dict[str, Any]:
        if (why := self.available()) is not None:
            raise RetryableError(why)
        pump = self._events()
        pump.attach(job.id, bus)
        events = pump.queue
        paths = (str(source), str(out_dir), str(work_dir))
        phase = "render" if job.is_render else "analysis"
        try:
            if job.is_render:
                return dict(self._one(self._submit(job, "render", 0, paths, events, self.unit_res), cancel, job))
            indices = self._one(self._submit(job, "analysis", 0, paths, events, self.analysis_res), cancel, job)
            phase = "clips"
            self._units(job, list(indices), paths, events, pump, cancel)
            phase = "finalize"
            return dict(self._one(self._submit(job, "finalize", 0, paths, events, self.final_res), cancel, job))
        except _system_errors() as exc:  # Ray lost the phase (its node, its worker, this driver's raylet)
            gone = self._drop_if_lost()
            raise RetryableError(f"the Ray cluster at {self.address} lost the job's {phase} "
                                 f"({type(exc).__name__}{'; this driver lost its raylet' if gone else ''})") from exc
        finally:
            pump.detach(job.id)

    def _events(self) -> _Pump:
        """The queue actor the tasks send events to (one per driver, on its node; made again if lost)."""
        import ray
        from ray.util.queue import Queue
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        with self._lock:
            if self._pump is None or not self._pump.healthy:
                if self._pump is not None:
                    self._pump.close()
                here = ray.get_runtime_context().get_node_id()
                queue = Queue(actor_options={"num_cpus": 0, "scheduling_strategy":
                                             NodeAffinitySchedulingStrategy(node_id=here, soft=True)})
                self._pump = _Pump(queue, self.poll_s)
            return self._pump

    def _submit(self, record: JobRecord, phase: str, index: int, paths: tuple[str, str, str], events: Any,
                res: Resources) -> Any:
        assert self._task is not None
        return self._task.options(**ray_options(res), name=f"{phase}-{record.id}-{index}").remote(
            self.factory, record, phase, index, paths, events)

    def close(self) -> None:
        """Stop relaying events and let go of the queue actor (the worker process stops)."""
        with self._lock:
            if self._pump is not None:
                self._pump.close()
                self._pump = None

    def _one(self, ref: Any, cancel: threading.Event, job: JobRecord | None = None) -> Any:
        self._wait([ref], cancel, job)
        return self._result(ref)

    def _wait(self, refs: list[Any], cancel: threading.Event, job: JobRecord | None = None) -> list[Any]:
        """Block until one of ``refs`` is done; the done ones."""
        import ray

        while True:
            if cancel.is_set():
                if job is not None:
                    self._stop_phases(job)
                for ref in refs:
                    ray.cancel(ref, force=True)
                raise JobCancelled()
            done, _ = ray.wait(refs, num_returns=1, timeout=self.poll_s)
            if done:
                return list(done)

    def _stop_phases(self, job: JobRecord) -> None:
        """Tell every node's stages to stop this attempt's phases (the tasks only wait on them)."""
        import ray

        try:
            for name in ray.util.list_named_actors():
                if name.startswith(NODE_ACTOR):
                    ray.get_actor(name).cancel.remote(job.id, job.attempts)
        except Exception:  # a node going away as we stop: its phases went with it
            log.warning("could not reach every node to stop a job's phases", exc_info=True)

    def _result(self, ref: Any) -> Any:
        import ray
        from ray.exceptions import RayTaskError

        try:
            return ray.get(ref)
        except RayTaskError as exc:  # the job's own error, raised in the task: raise it here as it was
            cause = exc.cause if isinstance(exc.cause, BaseException) else None
            if cause is not None:
                raise cause from None
            raise

    def _units(self, job: JobRecord, indices: list[int], paths: tuple[str, str, str], events: Any, pump: _Pump,
               cancel: threading.Event) -> None:
        lost = _system_errors()
        tries = {i: 1 for i in indices}
        pending = {self._submit(job, "unit", i, paths, events, self.unit_res): i for i in indices}
        while pending:
            for ref in self._wait(list(pending), cancel, job):
                index = pending.pop(ref)
                try:
                    self._result(ref)
                except lost as exc:
                    if tries[index] > self.unit_retries:
                        raise RetryableError(f"clip {index} was lost {tries[index]} times on the Ray cluster "
                                             f"({type(exc).__name__})") from exc
                    tries[index] += 1
                    node = unit_node(Path(paths[2]), index)
                    note = (f"clip {index} was lost with its Ray node {node or '?'} or worker "
                            f"({type(exc).__name__}); running it again (try {tries[index]})")
                    log.warning(note, extra={"job_id": job.id})
                    retry = {"clip": index, "try": tries[index], "attempt": job.attempts, "node": node,
                             "reason": type(exc).__name__, "at": int(time.time() * 1000)}
                    pump.note(job.id, note, {CLIP_RETRY: retry})  # the executor records it in the job row
                    pending[self._submit(job, "unit", index, paths, events, self.unit_res)] = index
                except BaseException:
                    import ray

                    self._stop_phases(job)  # one clip failed the job: the others stop
                    for other in pending:
                        ray.cancel(other, force=True)
                    raise


def raylet_answers(timeout_s: float = 1.0) -> bool:
    """Whether this driver's raylet (the node it joined the cluster through) still accepts connections."""
    import ray

    node = ray._private.worker.global_worker.node  # the connected driver's node (Ray's own handle)
    path = getattr(node, "raylet_socket_name", None) if node is not None else None
    if not path:
        return True  # nothing to ask: Ray finds out on its own
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout_s)
        try:
            s.connect(path)
        except OSError:
            return False
    return True


class _Pump:
    """Moves the tasks' events from the queue actor to each running job's bus (progress never backwards)."""

    def __init__(self, queue: Any, poll_s: float) -> None:
        self.queue = queue
        self.poll_s = poll_s
        self.healthy = True
        self._buses: dict[str, tuple[EventBus, list[float]]] = {}
        self._lock = threading.Lock()
        self._draining = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ray-events", daemon=True)
        self._thread.start()

    def attach(self, job_id: str, bus: EventBus) -> None:
        with self._lock:
            self._buses[job_id] = (bus, [0.0])

    def detach(self, job_id: str) -> None:
        self._drain()  # what the job's last task sent
        with self._lock:
            self._buses.pop(job_id, None)

    def _drain(self) -> None:
        with self._draining:  # one reader at a time (the loop, and a job's detach)
            self._drain_once()

    def _drain_once(self) -> None:
        import ray
        from ray.exceptions import RayActorError

        with self._lock:
            if not self._buses or not ray.is_initialized():  # nothing to deliver (and never start Ray here)
                return
        try:
            items = self.queue.get_nowait_batch(self.queue.qsize())
        except RayActorError:
            log.warning("the job events queue is gone; making another", exc_info=True)
            self.healthy = False
            return
        except Exception:  # a passing failure (a timeout, a race on the size): read again at the next poll
            log.debug("could not read the job events queue", exc_info=True)
            return
        for job_id, rec in items:
            with self._lock:
                target = self._buses.get(job_id)
            if target is None:  # a job no longer running here (a late task of a cancelled job)
                continue
            bus, last = target
            event = JobEvent.from_record(job_id, rec)
            if event.type == "progress":
                last[0] = max(last[0], event.progress)
                event = JobEvent(event.job_id, "progress", event.stage, last[0], event.message,
                                 stage_progress=event.stage_progress)
            bus.publish(event)

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s) and self.healthy:
            self._drain()

    def note(self, job_id: str, message: str, extra: dict[str, Any]) -> None:
        """A progress event from the driver itself (a clip run again), at the job's progress so far."""
        with self._lock:
            target = self._buses.get(job_id)
        if target is not None:
            target[0].publish(JobEvent(job_id, "progress", "clips", target[1][0], message, extra=extra))

    def stop(self) -> None:
        """Stop relaying (the queue actor went with the cluster: nothing to shut down)."""
        self._stop.set()

    def close(self) -> None:
        self.stop()
        try:
            self.queue.shutdown(force=True)
        except Exception:
            log.debug("could not shut the event queue down", exc_info=True)


def job_runner(address: str, factory: str, graph_of: Callable[[], JobGraph]) -> RayJobRunner:
    """The Ray job function for ``CLIPORA_EXECUTOR=ray`` (the composition root passes its graph)."""
    return RayJobRunner(address, factory, graph_of())


def wait_for(runner: RayJobRunner, timeout_s: float) -> bool:
    """True once the cluster answers (tests, start-up scripts)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if runner.available() is None:
            return True
        time.sleep(0.5)
    return False
