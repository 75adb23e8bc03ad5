"""The progress bar: done / running / failed counts and the best loss so far (tqdm)."""

from __future__ import annotations

import math
from typing import Any

from tqdm import tqdm


class Progress:
    """A tqdm bar over completed trials; a no-op when disabled.

    Args:
        total: max_evals, or None when only timeout/early stopping bounds the run.
        initial: trials already finished (a resumed run).
        enabled: ``show_progressbar``.
    """

    def __init__(self, total: int | None, initial: int, enabled: bool) -> None:
        self._bar: Any = None
        self._n = initial
        if enabled:
            self._bar = tqdm(total=total, initial=initial, unit="trial", dynamic_ncols=True,
                             desc="parzen", leave=True)

    def update(self, finished: int, running: int, failed: int, best: float | None) -> None:
        if self._bar is None:
            return
        if finished > self._n:
            self._bar.update(finished - self._n)
            self._n = finished
        best_s = f"{best:.6g}" if best is not None and math.isfinite(best) else "-"
        post = f"best loss: {best_s}"
        if running:
            post += f", running: {running}"
        if failed:
            post += f", failed: {failed}"
        self._bar.set_postfix_str(post, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
