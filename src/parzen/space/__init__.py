"""Search spaces: validated nodes, their flat compiled view, and ``space_eval``."""

from __future__ import annotations

from parzen.space._compile import Assignment, Condition, Space, compile_space, describe
from parzen.space._eval import space_eval
from parzen.space._nodes import (
    Cast,
    Choice,
    Node,
    Normal,
    Param,
    RandInt,
    Uniform,
    is_finite_number,
)

__all__ = [
    "Assignment",
    "Cast",
    "Choice",
    "Condition",
    "Node",
    "Normal",
    "Param",
    "RandInt",
    "Space",
    "Uniform",
    "compile_space",
    "describe",
    "is_finite_number",
    "space_eval",
]
