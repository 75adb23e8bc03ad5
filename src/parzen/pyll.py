"""The small part of hyperopt's ``pyll`` that search spaces use: ``scope.int`` and
``scope.float``.

parzen does not interpret expression graphs. Any other ``scope`` attribute raises a clear
error instead of silently building something that would misbehave.
"""

from __future__ import annotations

from typing import Any

from parzen.exceptions import UnsupportedExpression
from parzen.space import Cast, Node

__all__ = ["scope"]


class _Scope:
    """``scope.int(node)`` and ``scope.float(node)``; nothing else."""

    @staticmethod
    def int(node: Any) -> Any:
        """Cast the node's value to ``int`` when the space is evaluated."""
        return Cast(node, "int") if isinstance(node, Node) else int(node)

    @staticmethod
    def float(node: Any) -> Any:
        """Cast the node's value to ``float`` when the space is evaluated."""
        return Cast(node, "float") if isinstance(node, Node) else float(node)

    def __getattr__(self, name: str) -> Any:
        raise UnsupportedExpression(
            f"scope.{name} is not supported: parzen implements only scope.int and scope.float. "
            "Compute derived values inside your objective instead."
        )


scope = _Scope()
