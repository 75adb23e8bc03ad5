"""Trials as rows: the columns of ``parzen trials``, ``Trials.export`` and ``to_dataframe``.

One row per trial, always with the same columns, so a CSV written from Python and one piped
from the command line can be compared or concatenated:

``tid, state, loss, step, duration_s, worker, attempts`` (``step``: the last step the trial
reported with ``parzen.report``; a pruned trial's ``loss`` is its loss at that step), then
one column per parameter label with the raw trial value (a choice's option *index*, as
hyperopt stores it, so the value can be fed back through ``points_to_evaluate``), and after
each choice a ``<label>_value`` column with the option's value (``space_eval``'s answer for
that option). Value columns need the space's description (the experiment document's
``space``, or ``trials.attachments["space_description"]`` for a local run); without it they
are left out. A parameter that is inactive in a trial (under another choice) is empty.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, NamedTuple

from parzen.exceptions import ConfigError
from parzen.space.described import ParamInfo, choice_value, params_of
from parzen.trial import Trial, TrialState

FIXED_COLUMNS = ("tid", "state", "loss", "step", "duration_s", "worker", "attempts")
VALUE_SUFFIX = "_value"
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
# Cell values ``_plain`` returns as they are, told by their exact type (a subclass, such as a
# numpy scalar, goes through ``_plain``).
_AS_IS = frozenset({int, str, bool})


class _Cells(NamedTuple):
    """What one parameter adds to a row of ``trial_table``.

    Attributes:
        label: the parameter's column.
        choice: the parameter's description when its option's value goes to ``key``, else
            None (not a choice, or a later parameter's cell of that name wins).
        key: ``<label>_value``.
        own_column: ``key`` is a column of its own (not another parameter's label).
        constants: the value of each option that is a plain constant, by index.
    """

    label: str
    choice: ParamInfo | None
    key: str
    own_column: bool
    constants: dict[int, Any]


@dataclass(frozen=True)
class Table:
    """Rows with a fixed column order; cells are JSON-able Python values or None."""

    columns: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]


def parameter_infos(trials: Sequence[Trial], space: Any = None) -> dict[str, ParamInfo]:
    """Every parameter label, in the space's order (or first appearance without a space),
    plus labels found in trials but not in the description."""
    infos = params_of(space) if space else {}
    for t in trials:
        for label in t.params:
            if label not in infos:
                infos[label] = ParamInfo(label)
    return infos


def trial_table(trials: Sequence[Trial], space: Any = None) -> Table:
    """The rows of ``trials`` in the module's column layout."""
    infos = parameter_infos(trials, space)
    columns = list(FIXED_COLUMNS)
    # What each parameter adds to a row, worked out once per table, not once per trial (the
    # dashboard's first read builds 20,000 rows): its label, and for a choice the key its
    # value goes to, whether that key is a column of its own (else it is another
    # parameter's label, written before this one: the value overwrites that cell), and the
    # value of each option that is a plain constant (``"relu"``, ``64``), by index.
    plan: list[_Cells] = []
    order = {label: i for i, label in enumerate(infos)}
    for i, (label, info) in enumerate(infos.items()):
        columns.append(label)
        key = f"{label}{VALUE_SUFFIX}"
        # (Any other option, a dict or list that may hold parameters, is evaluated per trial;
        # and its value is a container each row must have its own copy of.)
        constants = {n: _plain(o) for n, o in enumerate(info.options)
                     if o is None or isinstance(o, (str, int, float))}
        if not info.is_choice:
            plan.append(_Cells(label, None, key, False, {}))
        elif key not in infos:
            columns.append(key)
            plan.append(_Cells(label, info, key, True, constants))
        else:
            # A later parameter's cell of that name is written after this value: it wins.
            plan.append(_Cells(label, info if order[key] < i else None, key, False, constants))
    words = {s: s.word for s in TrialState}
    isfinite = math.isfinite
    rows = []
    # Cells are written in column order, so each row's keys are the columns' (a label that
    # repeats a fixed column's name overwrites that cell in place, as a later column would).
    for t in trials:
        duration = t.duration
        row: dict[str, Any] = {
            "tid": t.tid, "state": words[t.state], "loss": _finite(_loss(t)),
            "step": t.curve()[-1].step if t.intermediate else None,
            "duration_s": duration if duration is None or isfinite(duration) else None,
            "worker": t.owner.worker if t.owner else None,
            "attempts": t.attempts,
        }
        params = t.params
        for label, choice, key, own_column, constants in plan:
            value = params.get(label)
            # The common cells inline (``_plain``'s answer for them); anything else through it.
            if type(value) is float:
                row[label] = value if isfinite(value) else None
            elif value is None or type(value) in _AS_IS:
                row[label] = value
            else:
                row[label] = _plain(value)
            if choice is not None:
                if type(value) is int and value in constants:
                    row[key] = constants[value]
                elif label in params:
                    row[key] = _plain(choice_value(choice, params))
                elif own_column:
                    row[key] = None
        rows.append(row)
    return Table(tuple(columns), tuple(rows))


def write_csv(table: Table, out: IO[str]) -> None:
    """``table`` as CSV with a header; None is an empty cell, containers are JSON text."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(table.columns)
    for row in table.rows:
        w.writerow([csv_cell(row[c]) for c in table.columns])


def write_jsonl(table: Table, out: IO[str]) -> None:
    """``table`` as JSON Lines: one object per trial, keys in column order."""
    for row in table.rows:
        out.write(json.dumps(row, allow_nan=False) + "\n")


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (str, int)):
        return str(value)
    return json.dumps(value, allow_nan=False, separators=(",", ":"))


def write_file(trials: Sequence[Trial], space: Any, path: str | os.PathLike[str],
               format: str | None = None) -> int:
    """Write ``trials`` to ``path`` as CSV or JSON Lines; see ``Trials.export``.

    Args:
        space: the space's description (``Trials.space_description()``), or None.

    Returns:
        The number of trials written.
    Raises:
        ConfigError: the format is neither given nor told by the file's suffix.
    """
    fmt = _format_for(os.fspath(path), format)
    table = trial_table(trials, space)
    buf = io.StringIO()
    (write_csv if fmt == "csv" else write_jsonl)(table, buf)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(buf.getvalue())
    return len(table.rows)


def to_dataframe(trials: Sequence[Trial], space: Any) -> Any:
    """``trials`` as a pandas DataFrame with the export's columns; see ``Trials.to_dataframe``.

    Raises:
        ConfigError: pandas is not installed.
    """
    try:
        import pandas as pd  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise ConfigError("Trials.to_dataframe needs pandas, which parzen does not install: "
                          "pip install pandas (or use trials.export('trials.csv'))") from None
    table = trial_table(trials, space)
    return pd.DataFrame.from_records(list(table.rows), columns=list(table.columns))


def _format_for(path: str, format: str | None) -> str:
    if format is not None:
        fmt = {"json": "jsonl", "ndjson": "jsonl"}.get(format.lower(), format.lower())
        if fmt not in ("csv", "jsonl"):
            raise ConfigError(f"export format {format!r}: use 'csv' or 'jsonl'")
        return fmt
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in FORMATS:
        raise ConfigError(f"cannot tell the export format of {path!r}: name it *.csv or *.jsonl, "
                          "or pass format='csv' or format='jsonl'")
    return FORMATS[suffix]


def _loss(t: Trial) -> float | None:
    """The loss column: a pruned trial's is its last reported loss (at ``step``)."""
    if t.state is TrialState.PRUNED and t.intermediate:
        return t.curve()[-1].loss
    return t.loss


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _plain(value: Any) -> Any:
    """A JSON-able copy of a cell value (numpy scalars and tuples become plain Python)."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Iterable):
        return [_plain(v) for v in value]
    item = getattr(value, "item", None)  # numpy scalar
    return _plain(item()) if callable(item) else str(value)
