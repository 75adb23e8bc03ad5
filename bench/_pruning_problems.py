"""The learning-curve problems of ``pruning.py``, and the loops that run them with pruning.

Imported by both interpreters: the dev venv (parzen) and ``bench/.anchors-venv`` (optuna
5.0). Only numpy is imported at module level; scikit-learn is imported when the real model
is built (the anchor venv borrows it from the dev venv: same Python and numpy, see
``_borrow_sklearn``).

Each problem yields a trial's loss step by step (an epoch of training, or a point of a
parametric curve) up to ``R`` steps; cost is counted in steps. The regret of a run at a
budget is the true final loss (at step ``R``) of the completed trial the run reports as best,
minus the problem's best final loss.
"""

from __future__ import annotations

import math
import os
import site
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from problems import ackley5, hartmann6, levy5

R = 27  # steps of a complete trial: rungs 1, 3, 9 with reduction factor 3


def eta() -> float:
    """The pruners' reduction factor: 3, or ``pruning.py --eta`` (passed in the environment
    so that both interpreters read it the same way)."""
    return float(os.environ.get("PARZEN_BENCH_ETA", "3"))


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "uniform", "loguniform", "choice"
    low: float = 0.0
    high: float = 1.0
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Problem:
    name: str
    params: tuple[Param, ...]
    curve: Callable[[Mapping[str, Any], int], Iterator[float]]  # (point, seed) -> losses
    true_final: Callable[[Mapping[str, Any]], float]
    best: float  # the lowest true final loss over the space
    note: str


# ---- parametric families -----------------------------------------------------------------
# The floor of each curve (the loss it tends to) is a classic multimodal test function of
# most parameters (``problems.py``), so 45 complete trials do not find its minimum; one more
# parameter sets how fast the curve falls and how low it can go, so that curves cross. The
# parts add, so the best final loss is the test function's minimum plus a 1-D minimum over
# the speed parameter, found on a fine grid.

_H6_ARGMIN = {"x0": 0.20169, "x1": 0.150011, "x2": 0.476874, "x3": 0.275332, "x4": 0.311652,
              "x5": 0.6573}
_H6_MIN = hartmann6(_H6_ARGMIN)


def _crossing_parts(lr: float) -> tuple[float, float]:
    log_lr = math.log10(lr)
    # Large steps learn fast and end high: the leader at step 1 (lr = 0.1) fades by step 3,
    # and the best final loss (lr near 0.015) only leads from step 9 or so.
    return 0.3 * (log_lr + 2.0) ** 2, 0.15 + 3.0 * 10 ** (log_lr + 1.0)


def _crossing_at(p: Mapping[str, Any], t: int) -> float:
    own, speed = _crossing_parts(p["lr"])
    return 0.3 * (hartmann6(p) - _H6_MIN) / -_H6_MIN + own + 1.5 / (1.0 + speed * t)


def _crossing(p: Mapping[str, Any], seed: int) -> Iterator[float]:
    for t in range(1, R + 1):
        yield _crossing_at(p, t)


def _fading_at(p: Mapping[str, Any], t: float) -> float:
    s = p["s"]
    # A high s starts fast (small a) but ends higher: early leaders fade.
    a = 0.3 + 1.2 * (1.0 - s)
    return 0.02 * levy5(p) + (s - 0.2) ** 2 + a / math.sqrt(t)


def _fading(p: Mapping[str, Any], seed: int) -> Iterator[float]:
    for t in range(1, R + 1):
        yield _fading_at(p, t)


def _saturating_parts(p: Mapping[str, Any]) -> tuple[float, float]:
    s = p["s"]
    # Slow learners (large tau) reach lower floors: curves cross late.
    return 0.05 * ackley5(p) + 0.4 * (1 - s) ** 2, 1.0 + 12.0 * s


def _saturating_true(p: Mapping[str, Any]) -> float:
    floor, tau = _saturating_parts(p)
    return floor + (1.5 - floor) * math.exp(-R / tau)


def _saturating(p: Mapping[str, Any], seed: int) -> Iterator[float]:
    floor, tau = _saturating_parts(p)
    rng = np.random.default_rng([seed, int(1e9 * p["s"]) % 2**31, int(1e6 * p["x0"]) % 2**31])
    for t in range(1, R + 1):
        yield floor + (1.5 - floor) * math.exp(-t / tau) + float(rng.normal(0, 0.02))


def _best_1d(fn: Callable[[float], float], lo: float, hi: float, log: bool = False) -> float:
    grid = np.geomspace(lo, hi, 20001) if log else np.linspace(lo, hi, 20001)
    return float(min(fn(float(v)) for v in grid))


# ---- a real model: SGDClassifier on scikit-learn's digits, one epoch per step ------------

def _borrow_sklearn() -> None:
    """The anchor venv has no scikit-learn; use the dev venv's (same Python and numpy)."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        here = os.path.dirname(os.path.abspath(__file__))
        for root in (os.path.join(here, "..", ".venv"), "/work/main/.venv"):
            # Absolute: ``site.addsitedir`` puts the normalised path on sys.path.
            lib = os.path.abspath(os.path.join(
                root, "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}",
                "site-packages"))
            if os.path.isdir(lib):
                site.addsitedir(lib)
                sys.path.remove(lib)
                sys.path.append(lib)  # after the venv's own numpy and scipy
                return


_DATA: dict[str, Any] = {}


def _digits() -> tuple[Any, Any, Any, Any]:
    if not _DATA:
        _borrow_sklearn()
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import StandardScaler

        x, y = load_digits(return_X_y=True)
        x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=0.4, random_state=0,
                                                  stratify=y)
        scaler = StandardScaler().fit(x_tr)
        _DATA["d"] = (scaler.transform(x_tr), scaler.transform(x_va), y_tr, y_va)
    return _DATA["d"]  # type: ignore[no-any-return]


def _sgd(p: Mapping[str, Any], seed: int) -> Iterator[float]:
    _borrow_sklearn()
    from sklearn.linear_model import SGDClassifier

    x_tr, x_va, y_tr, y_va = _digits()
    model = SGDClassifier(loss=p["loss"], alpha=p["alpha"], eta0=p["eta0"],
                          learning_rate=p["schedule"], penalty="l2", random_state=0)
    classes = np.unique(y_tr)
    order = np.random.default_rng(0)
    for _ in range(R):
        idx = order.permutation(len(y_tr))
        model.partial_fit(x_tr[idx], y_tr[idx], classes=classes)
        yield float(1.0 - model.score(x_va, y_va))


_SGD_FINAL: dict[tuple[Any, ...], float] = {}


def _sgd_final(p: Mapping[str, Any]) -> float:
    key = tuple(sorted(p.items()))
    if key not in _SGD_FINAL:
        *_, last = _sgd(p, 0)
        _SGD_FINAL[key] = last
    return _SGD_FINAL[key]


ORACLE = "@oracle"  # the suffix of a problem's name that runs it ``with_oracle``


def with_oracle(problem: Problem) -> Problem:
    """``problem`` with perfect early information: every step of a trial reports the trial's
    true final loss. No predictor could tell a pruner or a sampler more after a trial's first
    step, so a pruner's saving here is the most its rule could save on the problem, however
    well the final loss were predicted (``pruning.py --oracle``)."""
    def flat(p: Mapping[str, Any], seed: int) -> Iterator[float]:
        final = problem.true_final(p)
        for _ in range(R):
            yield final

    return Problem(f"{problem.name}{ORACLE}", problem.params, flat, problem.true_final,
                   problem.best, f"{problem.note}; every report is the final loss")


def problem_named(name: str) -> Problem:
    """The problem ``name``; ``<problem>@oracle`` is that problem ``with_oracle``."""
    base = name.removesuffix(ORACLE)
    problem = problems()[base]
    return with_oracle(problem) if name != base else problem


def problems() -> dict[str, Problem]:
    def box(low: float, high: float, n: int) -> tuple[Param, ...]:
        return tuple(Param(f"x{i}", "uniform", low, high) for i in range(n))

    levy_min = {f"x{i}": 1.0 for i in range(5)}
    ackley_min = {f"x{i}": 0.0 for i in range(5)}
    crossing = Problem(
        "crossing", (*box(0, 1, 6), Param("lr", "loguniform", 1e-4, 1.0)),
        _crossing, lambda p: _crossing_at(p, R),
        _best_1d(lambda v: _crossing_at({**_H6_ARGMIN, "lr": v}, R), 1e-4, 1.0, log=True),
        "7-D: Hartmann-6 floor and a learning rate; large rates lead early and end worse")
    fading = Problem(
        "fading", (*box(-10, 10, 5), Param("s", "uniform")), _fading,
        lambda p: _fading_at(p, R),
        _best_1d(lambda v: _fading_at({**levy_min, "s": v}, R), 0.0, 1.0),
        "6-D: Levy-5 floor, a / sqrt(t) curves; the fast starters end higher")
    saturating = Problem(
        "saturating", (*box(-5, 5, 5), Param("s", "uniform")), _saturating,
        _saturating_true,
        _best_1d(lambda v: _saturating_true({**ackley_min, "s": v}), 0.0, 1.0),
        "6-D: Ackley-5 floor, exponential saturation, noise 0.02; slow learners end lower")
    sgd = Problem(
        "sgd_digits",
        (Param("alpha", "loguniform", 1e-6, 1e-1), Param("eta0", "loguniform", 1e-4, 1.0),
         Param("loss", "choice", choices=("hinge", "log_loss", "modified_huber")),
         Param("schedule", "choice", choices=("constant", "invscaling", "adaptive"))),
        _sgd, _sgd_final, 0.0,
        "scikit-learn SGDClassifier on digits, one epoch per step; loss = validation error")
    return {p.name: p for p in (crossing, fading, saturating, sgd)}


# ---- the loops -----------------------------------------------------------------------------

@dataclass
class Ledger:
    """Steps spent so far and, for each completed trial, when it completed."""

    budget: int
    steps: int = 0
    completed: list[tuple[int, float, float]] | None = None  # (steps, reported, true final)
    trials: int = 0
    pruned: int = 0

    def __post_init__(self) -> None:
        self.completed = []


def run_parzen(problem: Problem, pruner_name: str, seed: int, budget: int) -> dict[str, Any]:
    import parzen
    from parzen import hp
    from parzen.pruners import AshaPruner, HyperbandPruner, MedianPruner

    pruner = {"none": None, "asha": AshaPruner(1, eta(), R),
              "hyperband": HyperbandPruner(1, R, eta()),
              "median": MedianPruner(n_startup_trials=5, n_warmup_steps=1)}[pruner_name]
    space = {}
    for prm in problem.params:
        if prm.kind == "uniform":
            space[prm.name] = hp.uniform(prm.name, prm.low, prm.high)
        elif prm.kind == "loguniform":
            space[prm.name] = hp.loguniform(prm.name, math.log(prm.low), math.log(prm.high))
        else:
            space[prm.name] = hp.choice(prm.name, list(prm.choices))
    led = Ledger(budget)

    def objective(point: dict[str, Any]) -> float:
        led.trials += 1
        loss = math.inf
        try:
            for step, loss in enumerate(problem.curve(point, seed), start=1):
                led.steps += 1
                parzen.report(loss, step)
        except parzen.TrialPruned:
            led.pruned += 1
            raise
        assert led.completed is not None
        led.completed.append((led.steps, loss, problem.true_final(point)))
        return loss

    parzen.fmin(objective, space, max_evals=100000, show_progressbar=False, pruner=pruner,
                rstate=np.random.default_rng(seed),
                early_stop_fn=lambda trials, *a: (led.steps >= budget, a))
    return {"completed": led.completed, "steps": led.steps, "trials": led.trials,
            "pruned": led.pruned}


def run_optuna(problem: Problem, pruner_name: str, seed: int, budget: int) -> dict[str, Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    pruner = {"none": optuna.pruners.NopPruner(),
              "sha": optuna.pruners.SuccessiveHalvingPruner(min_resource=1,
                                                            reduction_factor=int(eta())),
              "hyperband": optuna.pruners.HyperbandPruner(min_resource=1, max_resource=R,
                                                          reduction_factor=int(eta())),
              "median": optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
              }[pruner_name]
    # A fixed study name: optuna's HyperbandPruner assigns brackets by a hash of the study's
    # name, and a random name made its figures change from one run of this script to the next.
    study = optuna.create_study(study_name=f"pruning-{problem.name}-{seed}",
                                sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruner)
    led = Ledger(budget)

    def objective(trial: Any) -> float:
        point: dict[str, Any] = {}
        for prm in problem.params:
            if prm.kind == "choice":
                point[prm.name] = trial.suggest_categorical(prm.name, list(prm.choices))
            else:
                point[prm.name] = trial.suggest_float(prm.name, prm.low, prm.high,
                                                      log=prm.kind == "loguniform")
        led.trials += 1
        loss = math.inf
        for step, loss in enumerate(problem.curve(point, seed), start=1):
            led.steps += 1
            trial.report(loss, step)
            if trial.should_prune():
                led.pruned += 1
                raise optuna.TrialPruned()
        assert led.completed is not None
        led.completed.append((led.steps, loss, problem.true_final(point)))
        return loss

    def stop(study: Any, trial: Any) -> None:
        if led.steps >= budget:
            study.stop()

    study.optimize(objective, n_trials=100000, callbacks=[stop])
    return {"completed": led.completed, "steps": led.steps, "trials": led.trials,
            "pruned": led.pruned}


def main() -> None:
    """``python _pruning_problems.py LIB PRUNER PROBLEM BUDGET SEED...``: one JSON line per
    seed on stdout."""
    import json

    lib, pruner, name, budget, *seeds = sys.argv[1:]
    problem = problem_named(name)
    if lib == "parzen-noimpute":
        # The alternative to the sampler's choice: pruned trials teach it nothing.
        import parzen.samplers._history as history

        history.pruned_loss = lambda trial: None  # type: ignore[assignment]
    run = run_optuna if lib == "optuna" else run_parzen
    for s in seeds:
        out = run(problem, pruner, int(s), int(budget))
        print(json.dumps({"seed": int(s), **out}), flush=True)


if __name__ == "__main__":
    main()
