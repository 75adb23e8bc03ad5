"""The parzen version: one place, read by the package, its payload stamps and the build."""

from __future__ import annotations

__version__ = "0.1.0"
