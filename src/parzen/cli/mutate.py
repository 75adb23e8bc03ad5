"""The experiment tools that change an experiment: ``parzen cancel | requeue | delete``.

They read the same sources as the other tools (``--mongo`` or ``--file``, ``_source.py``);
``cancel`` and ``requeue`` on a file re-save it atomically, ``delete`` refuses a file. They
live apart from the read tools because ``requeue`` takes the coordinator's driver lease
(``runners.celery.driver``, which loads Celery): ``parzen trials`` does not pay for that.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from parzen.cli._format import out
from parzen.cli._registry import ALIAS_WORDS, command, parse_states, setup
from parzen.cli._source import Source, add_source_arguments, driver_state, experiment, opened
from parzen.exceptions import ConfigError
from parzen.runners.celery.driver import Driver
from parzen.settings import TrialSettings
from parzen.store import Experiment, lease_seconds
from parzen.trial import Trial, TrialState


@command("cancel")
def _configure_cancel(p: argparse.ArgumentParser) -> None:
    add_source_arguments(p)
    setup(p, run_cancel, "  parzen cancel mnist\n")


def run_cancel(args: argparse.Namespace) -> int:
    with opened(args) as src:
        exp = experiment(src, args.exp)
        alive, detail = driver_state(exp, src.store.now())
        expired: list[Trial] = []
        max_attempts = TrialSettings.from_dict(exp.settings).max_attempts
        if not alive:
            # A running trial whose worker died (by the reaper's rule) is as good as queued:
            # the next coordinator requeues it first thing, so it is cancelled with the
            # queue. A live coordinator's reaper requeues (and runs) such trials itself.
            expired = src.store.requeue_expired(exp.exp_key, max_attempts, lease_seconds(exp))
        n = src.store.cancel(exp.exp_key, (TrialState.NEW,))
        src.save()
        was_running = sum(1 for t in expired if t.state is TrialState.NEW)
        out(f"cancelled {n} new trial{'s' if n != 1 else ''} of {exp.exp_key!r}"
            + (f" ({was_running} of them were running on workers whose lease had expired)"
               if was_running else "")
            + (f"; {len(expired) - was_running} expired trials ended in error after "
               f"{max_attempts} attempts" if len(expired) > was_running else ""))
        if alive:
            print(f"note: its coordinator is still running ({detail}) and queues new trials; "
                  f"parzen stop {exp.exp_key} ends the run", file=sys.stderr)
    return 0


@command("requeue")
def _configure_requeue(p: argparse.ArgumentParser) -> None:
    add_source_arguments(p)
    p.add_argument("--state", action="append", metavar="STATE",
                   help="requeue trials in STATE: error (default), cancel or done (repeat, "
                        f"or separate with commas; also accepted: {ALIAS_WORDS})")
    p.add_argument("--expired", action="store_true",
                   help="instead, put running trials whose lease expired (their worker died) "
                        "back in the queue, as a live coordinator would")
    setup(p, run_requeue, "  parzen requeue mnist --state error\n"
                          "  parzen requeue mnist --expired\n"
                          "  parzen requeue --file run.pkl   # then resume the fmin\n")


def run_requeue(args: argparse.Namespace) -> int:
    states = parse_states(args.state) or [TrialState.ERROR]
    bad = [s.word for s in states if not s.is_finished()]
    if bad:
        raise ConfigError(f"--state {', '.join(bad)}: only finished trials (error, cancel, "
                          "done) can be requeued")
    with opened(args) as src:
        exp = experiment(src, args.exp)
        if args.expired:
            if args.state:
                raise ConfigError("--expired requeues running trials; leave out --state")
            max_attempts = TrialSettings.from_dict(exp.settings).max_attempts
            changed = src.store.requeue_expired(exp.exp_key, max_attempts, lease_seconds(exp))
            src.save()
            n = sum(1 for t in changed if t.state is TrialState.NEW)
            out(f"requeued {n} trials of {exp.exp_key!r} whose lease expired"
                + (f"; {len(changed) - n} ended in error after {max_attempts} attempts"
                   if len(changed) > n else ""))
        else:
            n = _requeue_finished(src, exp, states)
            src.save()
            words = "/".join(s.word for s in states)
            out(f"requeued {n} {words} trial{'s' if n != 1 else ''} of {exp.exp_key!r}")
        alive, _ = driver_state(exp, src.store.now())
        if n and not alive:
            # Only a coordinator publishes trials: without one they wait in the store.
            how = (f"fmin(..., trials_save_file={src.file!r})" if src.file else
                   f"fmin with MongoTrials(..., exp_key={exp.exp_key!r})")
            print(f"note: no coordinator is running; the trials run when you resume {how}",
                  file=sys.stderr)
    return 0


def _requeue_finished(src: Source, exp: Experiment, states: Sequence[TrialState]) -> int:
    """Requeue ``exp``'s trials in ``states``, refused while a coordinator drives it.

    A live coordinator reads back only the trials it queued itself and cancels every NEW
    trial when it ends: trials requeued under it would never run, and their results would be
    lost. The driver lease is held while requeueing, so no coordinator starts (and reads the
    experiment) halfway through.

    Raises:
        ConfigError: a live coordinator drives the experiment.
        ExperimentLocked: a coordinator took the experiment since it was read.
    """
    key = exp.exp_key
    alive, detail = driver_state(exp, src.store.now())
    if alive:
        raise ConfigError(
            f"{key!r} has a live coordinator ({detail}); stop its fmin first (parzen stop "
            f"{key}), then requeue "
            "and resume it: a running coordinator never runs trials requeued under it and "
            f"cancels them when it ends. (parzen requeue {key} --expired is safe meanwhile; "
            "the coordinator requeues expired leases itself)")
    if src.file is not None:
        # A local run has no driver lease; save() refuses a file an fmin changed meanwhile.
        return src.store.requeue(key, states)
    driver = Driver(src.store, key)
    driver.acquire()
    try:
        return src.store.requeue(key, states)
    finally:
        driver.release()


@command("delete")
def _configure_delete(p: argparse.ArgumentParser) -> None:
    add_source_arguments(p)
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    setup(p, run_delete, "  parzen delete old-mnist\n  parzen delete old-mnist --yes\n")


def run_delete(args: argparse.Namespace) -> int:
    if args.file:
        raise ConfigError(f"a local run is just its file: remove {args.file} to delete it")
    if args.exp is None:
        raise ConfigError("name the experiment to delete (EXP is required here)")
    with opened(args) as src:
        exp = experiment(src, args.exp)
        alive, detail = driver_state(exp, src.store.now())
        if alive:
            raise ConfigError(f"{exp.exp_key!r} has a live coordinator ({detail}); stop its "
                              f"fmin first (parzen stop {exp.exp_key})")
        n = sum(src.store.count_by_state(exp.exp_key).values())
        pid = exp.objective.payload_id if exp.objective is not None else None
        payloads = [str(pid)] if pid else []
        what = (f"experiment {exp.exp_key!r} in {src.where} ({n} trials"
                + (f", {len(payloads)} objective payload)" if payloads else ")"))
        if not args.yes and not _confirm(f"delete {what}?"):
            print("nothing deleted", file=sys.stderr)
            return 1
        for pid in payloads:
            src.store.delete_payload(pid)
        removed = src.store.delete_experiment(exp.exp_key)
        out(f"deleted {exp.exp_key!r}: {removed} trials"
            + (f", {len(payloads)} payload" if payloads else ""))
    return 0


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        raise ConfigError(f"refusing to {question.rstrip('?')} without confirmation: stdin is "
                          "not a terminal; pass --yes")
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")
