"""Library-side runners shared by the parzen process and the anchor venv.

Everything here imports only numpy and :mod:`problems` at module level; the
optimisation libraries are imported lazily inside the runner for the
requested algorithm, so the same file works in the parzen dev venv (parzen)
and in ``bench/.anchors-venv`` (hyperopt 0.3.0, optuna 5.0.0).

A quality job returns the loss of every evaluation in evaluation order plus
the evaluated points and batching evidence; a latency job returns per-call
suggestion timings for an n-trial history.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import time
import tracemalloc
from collections.abc import Callable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
from problems import (
    Param,
    build_hp_space,
    get_problem,
    native_point,
    near_duplicate_fraction,
    suggest_optuna,
)

HP_LIKE = ("parzen", "hyperopt")
ALGOS = ("parzen", "hyperopt", "optuna")


class NotBatchedError(RuntimeError):
    """Raised when a batch run was not truly batched (a hard benchmark failure)."""


def library_versions(algo: str) -> dict[str, str]:
    mod = importlib.import_module(algo)
    out = {algo: str(getattr(mod, "__version__", "unknown")), "numpy": np.__version__}
    try:
        import scipy

        out["scipy"] = scipy.__version__
    except ImportError:  # scipy is optional for the neutral code
        pass
    return out


def _hp_lib(name: str) -> SimpleNamespace:
    """The hyperopt-shaped API surface of ``parzen`` or ``hyperopt``."""
    mod = importlib.import_module(name)

    def sub(attr: str) -> Any:
        # parzen re-exports its samplers as attributes (parzen.tpe is
        # parzen.samplers.tpe), so prefer the attribute over an import path.
        found = getattr(mod, attr, None)
        return found if found is not None else importlib.import_module(f"{name}.{attr}")

    return SimpleNamespace(
        name=name,
        fmin=mod.fmin,
        hp=sub("hp"),
        tpe=sub("tpe"),
        rand=sub("rand"),
        Trials=mod.Trials,
        STATUS_OK=mod.STATUS_OK,
        JOB_STATE_DONE=getattr(mod, "JOB_STATE_DONE", None)
        or importlib.import_module(f"{name}.base").JOB_STATE_DONE,
    )


def _fmin_kwargs(fmin: Callable[..., Any], **wanted: Any) -> dict[str, Any]:
    """Drop optional cosmetic kwargs (progress bar) that an fmin may not accept.

    Semantically required kwargs (max_queue_len, rstate, ...) are always passed
    so that a missing feature fails loudly instead of being ignored.
    """
    import inspect

    try:
        accepted = inspect.signature(fmin).parameters
    except (TypeError, ValueError):
        return wanted
    has_var_kw = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    cosmetic = {"show_progressbar"}
    return {k: v for k, v in wanted.items() if k not in cosmetic or has_var_kw or k in accepted}


def _trial_doc_count(trials: Any) -> int | None:
    """How many trial documents (queued, running or done) the Trials holds."""
    try:
        return len(trials.trials)
    except Exception:  # a Trials without a .trials view: the check is skipped
        return None


def _expected_suggest_counts(evals: int, batch: int) -> list[int]:
    """Completed-evaluation count at which trial i must have been suggested."""
    return [(i // batch) * batch for i in range(evals)]


def _verify_batching(
    suggested_at: Sequence[int],
    docs_at_eval: Sequence[int | None],
    evals: int,
    batch: int,
    label: str,
) -> dict[str, Any]:
    """Fail loudly unless every batch was chosen before any of its results existed.

    Check 1 (algorithm wrapper): the i-th suggested point was produced when
    exactly ``(i // K) * K`` evaluations had completed.
    Check 2 (objective wrapper, hyperopt-shaped libs): when evaluation j
    starts, the Trials already holds the whole batch of j and nothing more,
    i.e. ``min((j // K + 1) * K, evals)`` documents.
    """
    expected = _expected_suggest_counts(evals, batch)
    if list(suggested_at) != expected:
        bad = next(
            (i for i, (a, b) in enumerate(zip(suggested_at, expected, strict=False)) if a != b),
            min(len(suggested_at), len(expected)),
        )
        raise NotBatchedError(
            f"{label}: trial {bad} suggested with "
            f"{suggested_at[bad] if bad < len(suggested_at) else 'no'} completed "
            f"evaluations, expected {expected[bad] if bad < len(expected) else 'none'} "
            f"(batch={batch}, {len(suggested_at)} suggestions for {evals} evals)"
        )
    doc_check = "skipped"
    if docs_at_eval and all(d is not None for d in docs_at_eval):
        want = [min((j // batch + 1) * batch, evals) for j in range(evals)]
        if list(docs_at_eval) != want:
            bad = next(
                (j for j, (a, b) in enumerate(zip(docs_at_eval, want, strict=False)) if a != b),
                min(len(docs_at_eval), len(want)) - 1,
            )
            raise NotBatchedError(
                f"{label}: evaluation {bad} started with {docs_at_eval[bad]} trial documents, "
                f"expected {want[bad]} (batch={batch})"
            )
        doc_check = "ok"
    return {"suggest_count_check": "ok", "doc_count_check": doc_check}


# --------------------------------------------------------------------------
# Quality runs
# --------------------------------------------------------------------------


class _Measure:
    """Evaluates a problem's objective, optionally with Gaussian noise, and keeps the record.

    With ``noise_sd`` > 0 the optimiser sees ``value + noise``; the noise comes from its own
    generator per seed, so every algorithm sees the same noise in the same evaluation order,
    and ``true_losses`` keeps the values without it, to score the trial each would report.
    """

    def __init__(self, problem_name: str, seed: int, noise_sd: float) -> None:
        self.prob = get_problem(problem_name)
        self.noise_sd = float(noise_sd)
        self.noise = np.random.default_rng([seed, 7919])
        self.losses: list[float] = []
        self.true_losses: list[float] = []
        self.points: list[dict[str, Any]] = []

    def __call__(self, point: Mapping[str, Any]) -> float:
        pt = native_point(self.prob.params, point)
        value = float(self.prob.objective(pt))
        loss = value
        if self.noise_sd:
            loss += self.noise_sd * float(self.noise.standard_normal())
        self.points.append(pt)
        self.losses.append(loss)
        self.true_losses.append(value)
        return loss

    def record(self, seconds: float, check: dict[str, str], batch: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "losses": self.losses,
            "points": self.points,
            "seconds": seconds,
            "batch_check": check,
            "near_dup": (near_duplicate_fraction(self.prob.params, self.points, batch)
                         if batch > 1 else None),
        }
        if self.noise_sd:
            out["true_losses"] = self.true_losses
        return out


def run_hp_quality(
    lib_name: str,
    problem_name: str,
    seed: int,
    evals: int,
    batch: int,
    settings: Mapping[str, Any] | None = None,
    noise_sd: float = 0.0,
) -> dict:
    """One fmin run with ``tpe.suggest`` of parzen or hyperopt (``settings`` go to it)."""
    lib = _hp_lib(lib_name)
    measure = _Measure(problem_name, seed, noise_sd)
    space = build_hp_space(lib.hp, measure.prob.params)
    trials = lib.Trials()
    losses = measure.losses
    suggested_at: list[int] = []
    docs_at_eval: list[int | None] = []

    def objective(params: Mapping[str, Any]) -> dict[str, Any]:
        docs_at_eval.append(_trial_doc_count(trials))
        return {"loss": measure(params), "status": lib.STATUS_OK}

    def algo(new_ids: Any, domain: Any, trials_: Any, seed_: Any, *args: Any, **kw: Any) -> Any:
        # The completed count is read *before* the library picks the points,
        # which is what "suggested before the results existed" means.
        done = len(losses)
        docs = lib.tpe.suggest(new_ids, domain, trials_, seed_, *args, **{**kw, **(settings or {})})
        suggested_at.extend([done] * len(docs))
        return docs

    t0 = time.perf_counter()
    kwargs = _fmin_kwargs(
        lib.fmin,
        algo=algo,
        max_evals=evals,
        trials=trials,
        rstate=np.random.default_rng(seed),
        show_progressbar=False,
    )
    if batch > 1:
        kwargs["max_queue_len"] = batch
    lib.fmin(objective, space, **kwargs)
    seconds = time.perf_counter() - t0
    if len(losses) != evals:
        raise RuntimeError(f"{lib_name}: {len(losses)} evaluations instead of {evals}")
    check = _verify_batching(
        suggested_at, docs_at_eval, evals, batch, f"{lib_name}/{problem_name}/seed={seed}"
    )
    return measure.record(seconds, check, batch)


def run_optuna_quality(problem_name: str, seed: int, evals: int, batch: int,
                       noise_sd: float = 0.0) -> dict:
    """One optuna study with the default ``TPESampler(seed=seed)``, via ask/tell."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    measure = _Measure(problem_name, seed, noise_sd)
    prob = measure.prob
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    losses = measure.losses
    suggested_at: list[int] = []
    t0 = time.perf_counter()
    while len(losses) < evals:
        k = min(batch, evals - len(losses))
        pending = []
        for _ in range(k):
            # ask + suggest_* is where optuna samples; all k happen before any tell.
            done = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
            trial = study.ask()
            pending.append((trial, suggest_optuna(trial, prob.params)))
            suggested_at.append(done)
        for trial, params in pending:
            study.tell(trial, measure(params))
    seconds = time.perf_counter() - t0
    check = _verify_batching(suggested_at, [], evals, batch, f"optuna/{problem_name}/seed={seed}")
    return measure.record(seconds, check, batch)


def run_quality(job: Mapping[str, Any]) -> dict:
    algo = job["algo"]
    args = (job["problem"], int(job["seed"]), int(job["evals"]), int(job["batch"]))
    noise_sd = float(job.get("noise_sd", 0.0))
    if algo in HP_LIKE:
        return run_hp_quality(algo, *args, settings=job.get("settings"), noise_sd=noise_sd)
    if algo == "optuna":
        return run_optuna_quality(*args, noise_sd=noise_sd)
    raise ValueError(f"unknown algo {algo!r}")


# --------------------------------------------------------------------------
# Latency runs
# --------------------------------------------------------------------------

# 10-D mixed space: 4 uniform, 2 loguniform, 2 quantised ints, 2 categoricals.
LATENCY_PARAMS: tuple[Param, ...] = (
    Param("u0", "uniform", -5.0, 5.0),
    Param("u1", "uniform", 0.0, 1.0),
    Param("u2", "uniform", -1.0, 1.0),
    Param("u3", "uniform", 10.0, 20.0),
    Param("lr", "loguniform", 1e-5, 1.0),
    Param("reg", "loguniform", 1e-3, 1e2),
    Param("depth", "quniform", 1, 32, q=1),
    Param("width", "quniform", 16, 512, q=16),
    Param("act", "choice", options=("relu", "tanh", "gelu")),
    Param("opt", "choice", options=("sgd", "adam", "adamw", "rmsprop", "lion")),
)


def latency_loss(point: Mapping[str, Any]) -> float:
    """Cheap structured loss so the good/bad split of the history is meaningful."""
    z = [
        (float(point["u0"]) - 1.0) / 10.0,
        float(point["u1"]) - 0.3,
        float(point["u2"]) / 2.0,
        (float(point["u3"]) - 14.0) / 10.0,
        (math.log10(float(point["lr"])) + 3.0) / 5.0,
        (math.log10(float(point["reg"])) - 0.0) / 5.0,
        (int(point["depth"]) - 8) / 31.0,
        (int(point["width"]) - 256) / 496.0,
    ]
    cat = (0.0 if point["act"] == "gelu" else 0.1) + (0.0 if point["opt"] == "adamw" else 0.05)
    return float(sum(v * v for v in z) + cat)


def make_history(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """n random points of the latency space (identical in every venv)."""
    rng = np.random.default_rng(seed)
    out: list[dict[str, Any]] = []
    for _ in range(n):
        pt: dict[str, Any] = {}
        for p in LATENCY_PARAMS:
            if p.kind == "uniform":
                pt[p.name] = float(rng.uniform(p.low, p.high))
            elif p.kind == "loguniform":
                pt[p.name] = float(np.exp(rng.uniform(math.log(p.low), math.log(p.high))))
            elif p.kind == "quniform":
                # Same rounding rule as hp.quniform: round(uniform / q) * q.
                pt[p.name] = int(round(float(rng.uniform(p.low, p.high)) / p.q) * p.q)
            else:
                pt[p.name] = p.options[int(rng.integers(len(p.options)))]
        out.append(pt)
    return out


def history_digest(history: Sequence[Mapping[str, Any]]) -> str:
    blob = json.dumps(history, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def _hp_insert_history(lib: SimpleNamespace, trials: Any, history: Sequence[Mapping]) -> str:
    """Put completed trial docs straight into a hyperopt-shaped Trials.

    Builds the docs with the library's own ``new_trial_docs`` so they are
    exactly what fmin would have stored; much faster than n fmin steps.
    """
    n = len(history)
    tids = list(trials.new_trial_ids(n))
    miscs, results = [], []
    for tid, pt in zip(tids, history, strict=True):
        idxs, vals = {}, {}
        for p in LATENCY_PARAMS:
            v = pt[p.name]
            # hp.choice stores the option index; other kinds store the value.
            vals[p.name] = [p.options.index(v) if p.kind == "choice" else float(v)]
            idxs[p.name] = [tid]
        miscs.append(
            {
                "tid": tid,
                "cmd": ("domain_attachment", "FMinIter_Domain"),
                "workdir": None,
                "idxs": idxs,
                "vals": vals,
            }
        )
        results.append({"loss": latency_loss(pt), "status": lib.STATUS_OK})
    docs = trials.new_trial_docs(tids, [None] * n, results, miscs)
    for d in docs:
        d["state"] = lib.JOB_STATE_DONE
    trials.insert_trial_docs(docs)
    trials.refresh()
    return "inserted-docs"


def _hp_rand_history(lib: SimpleNamespace, trials: Any, n: int, seed: int) -> str:
    """Fallback history: n fmin steps with rand.suggest on the cheap loss."""
    space = build_hp_space(lib.hp, LATENCY_PARAMS)
    lib.fmin(
        lambda p: {"loss": latency_loss(native_point(LATENCY_PARAMS, p)), "status": lib.STATUS_OK},
        space,
        **_fmin_kwargs(
            lib.fmin,
            algo=lib.rand.suggest,
            max_evals=n,
            trials=trials,
            rstate=np.random.default_rng(seed),
            show_progressbar=False,
        ),
    )
    return "fmin-rand"


def _timed_loop(
    one_step: Callable[[bool], tuple[float, float]], repeats: int, budget_s: float
) -> tuple[list[float], list[float], float, bool]:
    """Run one cold step then up to ``repeats`` timed steps within ``budget_s``.

    Each step returns (wall seconds, process CPU seconds).  CPU time is kept
    because the machine is shared: it is far less sensitive to other load.
    """
    cold, _ = one_step(False)
    walls: list[float] = []
    cpus: list[float] = []
    capped = False
    spent = cold
    for _ in range(repeats):
        if spent > budget_s:
            capped = True
            break
        wall, cpu = one_step(False)
        walls.append(wall)
        cpus.append(cpu)
        spent += wall
    return walls, cpus, cold, capped


def run_hp_latency(lib_name: str, n: int, repeats: int, budget_s: float, memory: bool) -> dict:
    lib = _hp_lib(lib_name)
    history = make_history(n)
    trials = lib.Trials()
    t0 = time.perf_counter()
    try:
        how = _hp_insert_history(lib, trials, history)
    except (AttributeError, ImportError, TypeError, KeyError):
        # Library without hyperopt's trial-doc API: same distribution, other points.
        trials = lib.Trials()
        how = _hp_rand_history(lib, trials, n, seed=0)
    build_s = time.perf_counter() - t0
    space = build_hp_space(lib.hp, LATENCY_PARAMS)
    state: dict[str, Any] = {"dt": 0.0, "cpu": 0.0, "peak": 0}

    def timed_algo(new_ids: Any, domain: Any, trials_: Any, seed_: Any, *a: Any, **kw: Any) -> Any:
        if state["trace"]:
            # What a library keeps between suggestions (parzen: encoded rows, scratch
            # buffers, kept with the trials' history) is rebuilt inside the traced call, so
            # the peak includes it.
            reset = getattr(lib.tpe, "reset_caches", None)
            if reset is not None:
                reset(trials_.history(domain.space))
            tracemalloc.start()
            tracemalloc.reset_peak()
        t, c = time.perf_counter(), time.process_time()
        docs = lib.tpe.suggest(new_ids, domain, trials_, seed_, *a, **kw)
        state["dt"] = time.perf_counter() - t
        state["cpu"] = time.process_time() - c
        if state["trace"]:
            state["peak"] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        return docs

    step_no = [0]
    steps: list[float] = []

    def one_step(trace: bool) -> tuple[float, float]:
        # One real fmin step: the history grows by one per step, as in real use.
        state["trace"] = trace
        step_no[0] += 1
        before = _trial_doc_count(trials)
        t_step = time.perf_counter()
        lib.fmin(
            lambda p: {
                "loss": latency_loss(native_point(LATENCY_PARAMS, p)),
                "status": lib.STATUS_OK,
            },
            space,
            **_fmin_kwargs(
                lib.fmin,
                algo=timed_algo,
                max_evals=(before or n) + 1,
                trials=trials,
                rstate=np.random.default_rng(1000 + step_no[0]),
                show_progressbar=False,
            ),
        )
        if not trace:
            # Whole fmin step (suggest + fmin bookkeeping + a trivial objective),
            # kept to expose work a library might do outside tpe.suggest.
            steps.append(time.perf_counter() - t_step)
        return float(state["dt"]), float(state["cpu"])

    times, cpus, cold, capped = _timed_loop(one_step, repeats, budget_s)
    peak = None
    if memory and not capped:
        one_step(True)
        peak = int(state["peak"])
    return {
        "history": how,
        "history_digest": history_digest(history) if how == "inserted-docs" else None,
        "n_docs": _trial_doc_count(trials),
        "build_seconds": build_s,
        "cold_ms": cold * 1e3,
        "times_ms": [t * 1e3 for t in times],
        "cpu_ms": [t * 1e3 for t in cpus],
        "capped": capped,
        "peak_bytes": peak,
        # steps[0] is the cold step; the rest pair with times_ms.
        "fmin_step_ms": [t * 1e3 for t in steps[1:]],
    }


def run_optuna_latency(n: int, repeats: int, budget_s: float, memory: bool) -> dict:
    import optuna
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    history = make_history(n)
    dists: dict[str, Any] = {}
    for p in LATENCY_PARAMS:
        if p.kind == "choice":
            dists[p.name] = CategoricalDistribution(list(p.options))
        elif p.kind == "quniform":
            dists[p.name] = IntDistribution(int(p.low), int(p.high), step=int(p.q))
        else:
            dists[p.name] = FloatDistribution(p.low, p.high, log=p.kind == "loguniform")
    t0 = time.perf_counter()
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=0))
    study.add_trials(
        [
            optuna.trial.create_trial(params=pt, distributions=dists, value=latency_loss(pt))
            for pt in history
        ]
    )
    build_s = time.perf_counter() - t0

    def one_step(trace: bool) -> tuple[float, float]:
        if trace:
            tracemalloc.start()
            tracemalloc.reset_peak()
        t, c = time.perf_counter(), time.process_time()
        # A full suggestion = ask (relative sampling) + every suggest_* call.
        trial = study.ask()
        params = suggest_optuna(trial, LATENCY_PARAMS)
        dt = time.perf_counter() - t
        cpu = time.process_time() - c
        if trace:
            state["peak"] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        study.tell(trial, latency_loss(native_point(LATENCY_PARAMS, params)))
        return dt, cpu

    state: dict[str, Any] = {"peak": 0}
    times, cpus, cold, capped = _timed_loop(one_step, repeats, budget_s)
    peak = None
    if memory and not capped:
        one_step(True)
        peak = int(state["peak"])
    return {
        "history": "add_trials",
        "history_digest": history_digest(history),
        "n_docs": len(study.trials),
        "build_seconds": build_s,
        "cold_ms": cold * 1e3,
        "times_ms": [t * 1e3 for t in times],
        "cpu_ms": [t * 1e3 for t in cpus],
        "capped": capped,
        "peak_bytes": peak,
    }


def run_latency(job: Mapping[str, Any]) -> dict:
    algo = job["algo"]
    args = (int(job["n"]), int(job["repeats"]), float(job["budget_s"]), bool(job["memory"]))
    if algo in HP_LIKE:
        return run_hp_latency(algo, *args)
    if algo == "optuna":
        return run_optuna_latency(*args)
    raise ValueError(f"unknown algo {algo!r}")


def run_job(job: Mapping[str, Any]) -> dict:
    """Entry point used by both the subprocess worker and in-process callers."""
    kind = job["kind"]
    if kind == "quality":
        return run_quality(job)
    if kind == "latency":
        return run_latency(job)
    if kind == "versions":
        return {"versions": library_versions(job["algo"])}
    raise ValueError(f"unknown job kind {kind!r}")
