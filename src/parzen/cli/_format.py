"""Output for the tools: aligned tables for people, JSON and CSV for pipes.

A table is fitted to the terminal when stdout is one: long cells are cut with an ellipsis,
the widest columns shrink first, and columns that still do not fit are left out with a note
saying how to see them. JSON and CSV are never cut. No third-party dependency.
"""

from __future__ import annotations

import argparse
import enum
import io
import json
import math
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from parzen.export import Table, write_csv
from parzen.space.described import shorten, value_text

FORMATS = ("table", "json", "csv")
MAX_CELL = 28
MIN_CELL = 6
GAP = "  "
NUMERIC_COLUMNS = ("tid", "loss", "duration_s", "attempts")


def add_format_argument(p: argparse.ArgumentParser, choices: Sequence[str] = FORMATS) -> None:
    others = " or ".join(c for c in choices if c != "table")
    p.add_argument("--format", choices=list(choices), default="table",
                   help=f"table for people (default), {others} for other programs")


def out(text: str) -> None:
    """Print ``text`` (plus a newline) to stdout."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def terminal_width() -> int | None:
    """The width to fit tables to: the terminal's, or None when stdout is not a terminal
    (``$COLUMNS`` wins, as for other command-line tools)."""
    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    if not sys.stdout.isatty():
        return None
    return shutil.get_terminal_size((100, 24)).columns


# ---- cells --------------------------------------------------------------------------------

def number(x: float | None, digits: int = 4) -> str:
    """A number for a table cell: ``-`` for None, scientific notation for very small or
    large magnitudes."""
    if x is None:
        return "-"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    if not math.isfinite(x):
        return str(x)
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e6):
        return f"{x:.{max(1, digits - 1)}e}"
    return f"{x:.{digits}g}"


def cell(value: Any, digits: int = 4) -> str:
    """Any value as table text."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return number(value, digits)
    return value_text(value)


def duration(seconds: float | None) -> str:
    """``0.31s``, ``42s``, ``4m05s``, ``2h07m``, ``3d04h``."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    s = abs(seconds)
    if s < 10:
        text = f"{s:.2f}s" if s < 1 else f"{s:.1f}s"
    elif s < 60:
        text = f"{s:.0f}s"
    elif s < 3600:
        text = f"{int(s // 60)}m{int(s % 60):02d}s"
    elif s < 86400:
        text = f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"
    else:
        text = f"{int(s // 86400)}d{int(s % 86400 // 3600):02d}h"
    return "-" + text if seconds < 0 else text


def ago(when: datetime | None, now: datetime) -> str:
    """``12s ago`` (or ``in 12s`` for a time in the future)."""
    if when is None:
        return "-"
    delta = (now - when).total_seconds()
    return f"{duration(delta)} ago" if delta >= 0 else f"in {duration(-delta)}"


def timestamp(when: datetime | None) -> str:
    """Local time, to the second: ``2026-03-01 14:03:22``."""
    if when is None:
        return "-"
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S")


# ---- tables -------------------------------------------------------------------------------

def render_table(columns: Sequence[str], rows: Sequence[Sequence[str]], *,
                 right: Sequence[str] = (), width: int | None = None,
                 indent: str = "") -> str:
    """Rows of text cells as aligned columns under a header.

    Args:
        right: columns to right-align (numbers).
        width: the line width to fit; None fits nothing but still cuts cells at ``MAX_CELL``.
    """
    # The last column is cut only to fit a terminal: cutting it aligns nothing.
    widths = [min(MAX_CELL if i < len(columns) - 1 else 10**6,
                  max([len(c)] + [len(r[i]) for r in rows]))
              for i, c in enumerate(columns)]
    shown = len(columns)
    if width is not None:
        budget = width - len(indent)

        def total(n: int) -> int:
            return sum(widths[:n]) + len(GAP) * (n - 1)

        # Text columns shrink first; numbers are never cut (a cut number misleads), so when
        # shrinking is not enough, columns are left out from the right.
        while total(shown) > budget:
            text_cols = [k for k in range(shown) if columns[k] not in right
                         and widths[k] > MIN_CELL]
            if text_cols:
                widths[max(text_cols, key=lambda k: widths[k])] -= 1
            elif shown > 1:
                shown -= 1
            else:
                break
    lines = []
    for r in [list(columns), *[list(r) for r in rows]]:
        parts = []
        for i in range(shown):
            text = shorten(r[i], widths[i])
            parts.append(text.rjust(widths[i]) if columns[i] in right else
                         text.ljust(widths[i]))
        lines.append((indent + GAP.join(parts)).rstrip())
    if shown < len(columns):
        note = (f"(+{len(columns) - shown} columns not shown: {', '.join(columns[shown:])}; "
                "--format csv shows all)")
        lines.append(indent + (shorten(note, width - len(indent)) if width else note))
    return "\n".join(lines)


def table_text(table: Table, *, digits: Mapping[str, int] | None = None,
               width: int | None = None) -> str:
    """A ``parzen.export.Table`` as an aligned text table."""
    digits = digits or {}
    rows = []
    for row in table.rows:
        rows.append([cell(row[c], digits.get(c, 4)) for c in table.columns])
    numeric = [c for c in table.columns if c in NUMERIC_COLUMNS
               or any(isinstance(r[c], (int, float)) and not isinstance(r[c], bool)
                      for r in table.rows)]
    return render_table(table.columns, rows, right=numeric, width=width)


def csv_text(table: Table) -> str:
    buf = io.StringIO()
    write_csv(table, buf)
    return buf.getvalue()


def json_text(obj: Any) -> str:
    """``obj`` as indented JSON: datetimes in ISO 8601, enums by name, NaN as null."""
    return json.dumps(jsonable(obj), indent=2, allow_nan=False)


def jsonable(obj: Any) -> Any:
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, enum.Enum):
        return obj.name.lower()
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, timedelta):
        return obj.total_seconds()
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in obj]
    item = getattr(obj, "item", None)  # numpy scalars
    if callable(item):
        return jsonable(item())
    return str(obj)
