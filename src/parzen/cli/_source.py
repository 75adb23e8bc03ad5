"""Where the tools read trials from: a MongoDB store, or a local run's ``trials_save_file``.

``--mongo URL`` (default ``$PARZEN_MONGO_URL``) opens a ``MongoTrialStore``; ``--file PATH``
loads the pickled ``Trials`` that ``fmin(..., trials_save_file=PATH)`` writes, whose store is
an in-memory one holding that single experiment. Both give a ``TrialStore``, so every command
is written once against the store contract.

A trial document that cannot be read as a trial (edited by hand, or written by another
program) is skipped by every command and named on stderr with the fix, by ``opened``: one bad
document must not hide the rest of the database.

A file is changed (``cancel``, ``requeue``) by re-saving it atomically, the way fmin saves
it; the save is refused if the file changed since it was read (an fmin still running on it).
Unpickling runs code from the file: use ``--file`` only on files you or your runs wrote.
"""

from __future__ import annotations

import argparse
import difflib
import os
import pickle
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.errors import OperationFailure

from parzen.cli._format import ago, duration
from parzen.exceptions import ConfigError, StoreError, unreadable_fix
from parzen.store import Experiment, MongoTrialStore, TrialStore
from parzen.store.uri import parse_mongo_url, redact_text
from parzen.trials import Trials, save_trials

DEFAULT_CONNECT_TIMEOUT_S = 5.0


def add_source_arguments(p: argparse.ArgumentParser, *, experiment: bool = True) -> None:
    """``EXP``, ``--mongo``, ``--file`` and ``--connect-timeout``."""
    if experiment:
        p.add_argument("exp", metavar="EXP", nargs="?",
                       help="the experiment (exp_key); may be omitted with --file, or when "
                            "the store holds a single experiment")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--mongo", metavar="URL", default=os.environ.get("PARZEN_MONGO_URL"),
                       help="MongoDB URL, e.g. mongodb://user:pass@host:27017/parzen "
                            "(default $PARZEN_MONGO_URL)")
    where.add_argument("--file", metavar="PATH",
                       help="a local run's file, written by fmin(..., trials_save_file=PATH)")
    p.add_argument("--connect-timeout", metavar="S", type=float,
                   default=DEFAULT_CONNECT_TIMEOUT_S,
                   help=f"seconds to wait for MongoDB (default {DEFAULT_CONNECT_TIMEOUT_S:g})")


@dataclass
class Source:
    """An opened store.

    Attributes:
        store: the trials.
        where: the store for messages: the URL with its password redacted, or the file path.
        file: the file's path when reading a local run.
        trials: the unpickled ``Trials`` of a local run.
    """

    store: TrialStore
    where: str
    file: str | None = None
    trials: Trials | None = None
    _stamp: tuple[int, int] | None = None

    def space(self, exp: Experiment) -> Any:
        """The space's description (``parzen.space.describe``), or None when unknown."""
        if exp.space:
            return exp.space
        if self.trials is not None:
            return self.trials.attachments.get("space_description") or None
        return None

    def save(self) -> None:
        """Write a changed local run back to its file, atomically.

        Raises:
            StoreError: the file changed since it was read.
        """
        if self.file is None or self.trials is None:
            return
        if _stamp(self.file) != self._stamp:
            raise StoreError(f"{self.file} changed while parzen was working on it (is an fmin "
                             "still writing it?); nothing was saved. Try again once it stops")
        # A fresh facade over the changed store: the loaded one caches finished trials, which
        # an operator's cancel or requeue has just changed.
        fresh = Trials(exp_key=self.trials.exp_key, store=self.store)
        fresh.attachments = dict(self.trials.attachments)
        save_trials(fresh, self.file)
        self._stamp = _stamp(self.file)

    def close(self) -> None:
        self.store.close()


@contextmanager
def opened(args: argparse.Namespace) -> Iterator[Source]:
    """The source named by ``--file`` or ``--mongo``, closed on exit.

    Raises:
        ConfigError: neither is given, or the file is not a saved ``Trials``.
        StoreUnavailable: MongoDB did not answer within ``--connect-timeout``.
    """
    source = open_file(args.file) if args.file else open_mongo(args.mongo, args.connect_timeout)
    try:
        yield source
    finally:
        try:
            report_unreadable(source.store)
        finally:
            source.close()


def report_unreadable(store: TrialStore) -> None:
    """Name on stderr the trial documents ``store`` skipped as unreadable, with the fix."""
    bad = store.unreadable()
    if not bad:
        return
    lines = [f"warning: skipped {len(bad)} unreadable trial document{'s' if len(bad) != 1 else ''}"
             " (edited by hand, or written by another program?):"]
    lines += [f"  {d}" for d in bad]
    lines.append(unreadable_fix(bad))
    print("\n".join(lines), file=sys.stderr)


def open_mongo(url: str | None, timeout_s: float) -> Source:
    if not url:
        raise ConfigError("no store given: pass --mongo URL (or set PARZEN_MONGO_URL), or "
                          "--file PATH for a local run saved with fmin(trials_save_file=PATH)")
    where = parse_mongo_url(url).redacted
    try:
        store = MongoTrialStore.from_url(url, connect_timeout_s=timeout_s, skip_unreadable=True)
    except OperationFailure as exc:  # authentication or authorisation refused
        raise StoreError(f"MongoDB at {where} refused: {redact_text(str(exc))[:300]}") from None
    return Source(store=store, where=where)


def open_file(path: str) -> Source:
    try:
        with open(path, "rb") as f:
            trials = pickle.load(f)  # the user's own file (see the module docstring)
    except FileNotFoundError:
        raise ConfigError(f"--file {path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"--file {path} is a directory, not a trials file") from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError,
            TypeError, ValueError) as exc:
        raise ConfigError(f"--file {path} is not a trials file written by "
                          f"fmin(trials_save_file=...): {type(exc).__name__}: {exc}") from None
    if not isinstance(trials, Trials):
        raise ConfigError(f"--file {path} holds a {type(trials).__name__}, not the Trials that "
                          "fmin(trials_save_file=...) writes")
    return Source(store=trials.store, where=path, file=path, trials=trials,
                  _stamp=_stamp(path))


def experiment(source: Source, name: str | None) -> Experiment:
    """The experiment ``name``; with a file, or a store holding one experiment, ``name`` may
    be None.

    Raises:
        ConfigError: no such experiment (the message lists the close names), or ``name`` is
            None and the store holds several.
    """
    if source.trials is not None:
        key = source.trials.exp_key
        if name is not None and name != key:
            raise ConfigError(f"{source.where} holds the experiment {key!r}, not {name!r}; "
                              "leave EXP out to use it")
        return source.store.get_experiment(key) or Experiment(key)
    if name is not None:
        exp = source.store.get_experiment(name)
        if exp is not None:
            return exp
    names = [e.exp_key for e in source.store.list_experiments()]
    if name is None:
        if len(names) == 1:
            return source.store.get_experiment(names[0]) or Experiment(names[0])
        if not names:
            raise ConfigError(f"{source.where} holds no experiment yet")
        raise ConfigError(f"name the experiment: {source.where} holds {len(names)}: "
                          f"{_listing(names)}")
    raise ConfigError(unknown_experiment(name, names, source.where))


def unknown_experiment(name: str, names: list[str], where: str) -> str:
    """The message for an unknown experiment, naming the closest known ones."""
    msg = f"no experiment {name!r} in {where}"
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.6)
    close += [n for n in names if name.lower() in n.lower() and n not in close][:5 - len(close)]
    if close:
        return msg + ". Did you mean " + " or ".join(repr(n) for n in close) + "?"
    if not names:
        return msg + "; it holds no experiment yet"
    return msg + f". It holds {len(names)}: {_listing(names)}"


def driver_state(exp: Experiment, now: datetime) -> tuple[bool, str]:
    """Whether a coordinator holds the driver lease of ``exp``, and a description of it."""
    d = exp.driver
    if d is None:
        return False, "none"
    who = f"pid {d.pid} on {d.host}"
    expires = d.expires
    if expires is None:
        return False, f"unknown ({who})"
    if expires <= now:
        return False, f"gone ({who}, lease expired {ago(expires, now)})"
    left = duration((expires - now).total_seconds())
    if d.dead_here():
        # On the coordinator's own machine a dead process is certain; elsewhere only the
        # lease running out tells.
        return False, f"dead ({who} is not running; its lease would run {left} more)"
    return True, f"alive ({who}, lease renewed, {left} left)"


def _listing(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def _stamp(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_mtime_ns, st.st_size
