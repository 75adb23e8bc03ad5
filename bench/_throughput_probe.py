"""Instrumentation of the coordinator for bench/throughput.py, without editing src/.

``BenchMongoTrials`` is a ``MongoTrials`` whose runner, store and Trials facade are wrapped
(instance attributes over the methods) so that every piece of the fmin loop is timed in
wall-clock and in the main thread's CPU time (``time.thread_time``):

- ``maintain`` (driver lease, ``requeue_expired``), ``refresh`` (``get_many`` of the trials in
  flight), ``suggest`` (the algo call; ``sampler`` is the sampler's own ``suggest`` inside it),
  ``allocate`` (``allocate_tids``), ``insert`` (``insert_new``), ``dispatch`` (Celery
  ``send_task`` per trial, also timed alone as ``publish``), ``wait`` (the poll sleep);
- every ``MongoTrialStore`` call as ``store.<method>``. A store call's wall time minus its
  CPU time is time the main thread spent blocked on the socket: the wire double's work, the
  loopback round trip and any time the OS kept us off a (busy) core.

Loop iterations are delimited by the end of each poll sleep (``runner.wait``, the last thing
``coordinator.run`` does each iteration); ``snapshots`` holds cumulative counters there (and
when the runner is built, and when it is closed), so per-iteration costs are differences of
consecutive snapshots. The first "iteration" thus also holds the run's start-up: the first
refresh (which reads every trial of the experiment), the experiment's preparation and the first
suggestion (which builds the sampler's history of every trial). ``initial_refresh`` holds the
first refresh's (wall, cpu) on its own.
"""

from __future__ import annotations

import gc
import importlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from parzen.mongoexp import MongoTrials
from parzen.runners import build_runner
from parzen.samplers._base import hyperopt_suggest
from parzen.trial import Trial

STORE_METHODS = ("now", "get_experiment", "put_experiment", "acquire_driver", "release_driver",
                 "allocate_tids", "insert_new", "requeue_expired", "cancel", "get_many", "find",
                 "count_by_state", "put_payload", "get", "delete_payload")


@dataclass
class Snapshot:
    wall: float
    cpu: float
    sleep: float
    sampler_wall: float
    sampler_cpu: float
    store_wall: float
    store_cpu: float
    publish_wall: float
    publish_cpu: float
    published: int
    gc: float


class Probe:
    """Accumulates timings of one fmin run."""

    def __init__(self) -> None:
        self.phase = "startup"
        # (phase, name) -> [wall s, main-thread cpu s, calls]
        self.acc: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
        self.publish: dict[int, float] = {}  # tid -> time.time() of its first publish
        self.noticed: dict[int, float] = {}  # tid -> time.time() the coordinator saw it end
        self.snapshots: list[Snapshot] = []
        self.loop_start: Snapshot | None = None
        self.loop_end: Snapshot | None = None
        self.setup_wall = 0.0
        self.initial_refresh: tuple[float, float] | None = None
        self._n_published = 0
        # Garbage collections while the run goes: per generation [count, seconds].
        self.gc: dict[int, list[float]] = {0: [0, 0.0], 1: [0, 0.0], 2: [0, 0.0]}
        self._gc_t0 = 0.0

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_t0 = time.perf_counter()
        else:
            slot = self.gc[int(info["generation"])]
            slot[0] += 1
            slot[1] += time.perf_counter() - self._gc_t0

    def start_gc_watch(self) -> None:
        gc.callbacks.append(self._on_gc)

    def stop_gc_watch(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    # ---- accumulation -----------------------------------------------------------------

    def total(self, name: str, phase: str = "loop") -> tuple[float, float, int]:
        w, c, n = self.acc.get((phase, name), (0.0, 0.0, 0))
        return w, c, int(n)

    def _sum(self, prefix: str) -> tuple[float, float]:
        w = c = 0.0
        for (_phase, name), (ww, cc, _) in self.acc.items():
            if name.startswith(prefix):
                w += ww
                c += cc
        return w, c

    def snapshot(self) -> Snapshot:
        sw, sc = self._sum("store.")
        return Snapshot(time.perf_counter(), time.thread_time(), self._sum("wait")[0],
                        *self._sum("sampler"), sw, sc, *self._sum("publish"),
                        self._n_published, sum(v[1] for v in self.gc.values()))

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            w0, c0 = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                slot = self.acc[(self.phase, name)]
                slot[0] += time.perf_counter() - w0
                slot[1] += time.thread_time() - c0
                slot[2] += 1
        return timed

    # ---- instrumenting the pieces -----------------------------------------------------

    def instrument_store(self, store: Any) -> None:
        for m in STORE_METHODS:
            if hasattr(store, m):
                setattr(store, m, self.wrap(f"store.{m}", getattr(store, m)))

    def instrument_trials(self, trials: Any) -> None:
        refresh = self.wrap("refresh", trials.refresh)

        def first_refresh() -> None:
            w0, c0 = time.perf_counter(), time.thread_time()
            try:
                refresh()
            finally:
                if self.initial_refresh is None:
                    self.initial_refresh = (time.perf_counter() - w0, time.thread_time() - c0)

        trials.refresh = first_refresh
        trials.new_trial_ids = self.wrap("allocate", trials.new_trial_ids)
        trials.insert_trial_docs = self.wrap("insert", trials.insert_trial_docs)
        absorb = trials._absorb

        def watch(ts: Iterable[Trial]) -> None:
            ts = list(ts)
            now = time.time()
            for t in ts:
                if t.state.is_finished() and t.tid not in self.noticed:
                    self.noticed[t.tid] = now
            absorb(ts)

        trials._absorb = watch

    def instrument_runner(self, runner: Any) -> None:
        wait = self.wrap("wait", runner.wait)
        close = runner.close
        publish = self.wrap("publish", runner._dispatcher.publish)
        self.loop_start = self.snapshot()
        self.snapshots.append(self.loop_start)

        def on_wait(timeout_s: float) -> None:
            wait(timeout_s)
            self.phase = "loop"
            self.snapshots.append(self.snapshot())

        def on_close(closing: Any) -> None:
            self.loop_end = self.snapshot()
            self.snapshots.append(self.loop_end)
            self.phase = "shutdown"
            close(closing)

        def on_publish(tid: int) -> None:
            self.publish.setdefault(tid, time.time())
            self._n_published += 1
            publish(tid)

        runner.maintain = self.wrap("maintain", runner.maintain)
        runner.close = on_close
        runner._dispatcher.publish = on_publish
        runner.dispatch = self.wrap("dispatch", runner.dispatch)
        runner.wait = on_wait

    def algo(self, factory: Callable[[], Any]) -> Callable[..., Any]:
        """An fmin ``algo`` running ``factory()``'s sampler, with the sampler timed apart."""
        probe = self

        class Timed:
            def __init__(self) -> None:
                self.inner = factory()
                self.suggest = probe.wrap("sampler", self.inner.suggest)

        suggest = self.wrap("suggest", lambda new_ids, domain, trials, seed:
                            hyperopt_suggest(Timed(), new_ids, domain, trials, seed))

        def algo(new_ids: Any, domain: Any, trials: Any, seed: int) -> Any:
            return suggest(new_ids, domain, trials, seed)

        return algo

    # ---- results ------------------------------------------------------------------------

    def iterations(self) -> list[dict[str, float]]:
        """Per loop iteration: its period (wait included), work wall/cpu (wait excluded), the
        sampler's part, the store's blocked time, the publish's blocked time, and how many
        trials it published."""
        out = []
        for a, b in zip(self.snapshots, self.snapshots[1:], strict=False):
            work_wall = (b.wall - a.wall) - (b.sleep - a.sleep)
            out.append({
                "period": b.wall - a.wall, "work_wall": work_wall, "work_cpu": b.cpu - a.cpu,
                "sampler_wall": b.sampler_wall - a.sampler_wall,
                "sampler_cpu": b.sampler_cpu - a.sampler_cpu,
                "store_wait": (b.store_wall - a.store_wall) - (b.store_cpu - a.store_cpu),
                "store_wall": b.store_wall - a.store_wall,
                "publish_wait": (b.publish_wall - a.publish_wall)
                - (b.publish_cpu - a.publish_cpu),
                "published": b.published - a.published,
                "gc": b.gc - a.gc,
            })
        return out


class BenchMongoTrials(MongoTrials):
    """``MongoTrials`` with a ``Probe`` on its store, facade and runner."""

    def __init__(self, *args: Any, probe: Probe, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.probe = probe
        probe.instrument_store(self.store)
        probe.instrument_trials(self)



def _probed_build_runner(backend: Any, trials: Any, domain: Any, **kwargs: Any) -> Any:
    """``parzen.runners.build_runner``, timed and instrumented for a ``BenchMongoTrials``.

    fmin builds its runner from ``trials.backend()``; the probe needs that runner, so the
    bench swaps fmin's reference to the builder (it is a harness, not library code)."""
    t0 = time.perf_counter()
    runner = build_runner(backend, trials, domain, **kwargs)
    if isinstance(trials, BenchMongoTrials):
        trials.probe.setup_wall = time.perf_counter() - t0
        trials.probe.instrument_runner(runner)
    return runner


# parzen.fmin the attribute is the function; the module is what holds the reference.
importlib.import_module("parzen.fmin").build_runner = _probed_build_runner
