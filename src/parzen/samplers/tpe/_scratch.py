"""Reusable per-thread buffers for the TPE's few large temporaries.

A suggestion at n=1000 needs two arrays of ~200 KB (the kernels' design rows and their logs
at the candidates) and frees them before returning. glibc serves such sizes with ``mmap`` or
trims them off the top of the heap when they are freed, so every suggestion paid for fresh,
zeroed pages: measured in the latency benchmark, 1.6 ms per suggestion became 2.7 ms at
n=1000 and 4.8 ms became 7.8 ms at n=10,000, depending only on the state of the process's
heap. Keeping one buffer per use and thread costs the largest size seen, once.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import numpy.typing as npt

_LOCAL = threading.local()


def scratch(name: str, shape: tuple[int, ...], dtype: Any = np.float64) -> npt.NDArray[Any]:
    """An uninitialised array of ``shape`` backed by this thread's buffer ``name``.

    Valid until the next call with the same ``name`` in the same thread: only for values
    that do not outlive the computation that asked for them.
    """
    bufs: dict[tuple[str, Any], npt.NDArray[Any]] | None = getattr(_LOCAL, "bufs", None)
    if bufs is None:
        bufs = {}
        _LOCAL.bufs = bufs
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


def clear() -> None:
    """Release this thread's buffers."""
    _LOCAL.bufs = {}
