"""Reusable buffers for the TPE's few large temporaries.

A suggestion at n=1000 needs two arrays of ~200 KB (the kernels' design rows and their logs
at the candidates) and frees them before returning. glibc serves such sizes with ``mmap`` or
trims them off the top of the heap when they are freed, so every suggestion paid for fresh,
zeroed pages (``bench/README.md``, "TPE settings", has the latency this cost). Keeping one
buffer per use costs the largest size seen, once.

The buffers belong to a ``Scratch`` object, kept in the history's memo (``_state.py``), so
they live as long as the history they are sized for; each thread has its own, as two threads
may suggest from the same history at once.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import numpy.typing as npt


class Scratch:
    """Named buffers, one set per thread; see the module docstring."""

    def __init__(self) -> None:
        self._local = threading.local()

    def get(self, name: str, shape: tuple[int, ...], dtype: Any = np.float64
            ) -> npt.NDArray[Any]:
        """An uninitialised array of ``shape`` backed by this thread's buffer ``name``.

        Valid until the next call with the same ``name`` in the same thread: only for values
        that do not outlive the computation that asked for them.
        """
        bufs: dict[tuple[str, Any], npt.NDArray[Any]] | None = getattr(self._local, "bufs",
                                                                       None)
        if bufs is None:
            bufs = {}
            self._local.bufs = bufs
        size = 1
        for s in shape:
            size *= s
        key = (name, np.dtype(dtype))
        buf = bufs.get(key)
        if buf is None or buf.shape[0] < size:
            # Some headroom: a history grows by a row per suggestion.
            buf = np.empty(size + size // 4 + 64, dtype=dtype)
            bufs[key] = buf
        return buf[:size].reshape(shape)


def buffer(scratch: Scratch | None, name: str, shape: tuple[int, ...],
           dtype: Any = np.float64) -> npt.NDArray[Any]:
    """``scratch.get(name, shape, dtype)``, or a new array when there is no ``scratch``."""
    if scratch is None:
        return np.empty(shape, dtype=dtype)
    return scratch.get(name, shape, dtype)
