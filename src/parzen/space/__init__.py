"""Search spaces: validated nodes and the expressions over them, their flat compiled view,
and ``space_eval``."""

from __future__ import annotations

from parzen.space._compile import Assignment, Condition, Space, compile_space, describe
from parzen.space._eval import space_eval
from parzen.space._nodes import (
    OPERATORS,
    Call,
    Cast,
    Choice,
    Literal,
    Node,
    Normal,
    Param,
    RandInt,
    Uniform,
    expr_text,
    is_finite_number,
)

__all__ = [
    "OPERATORS",
    "Assignment",
    "Call",
    "Cast",
    "Choice",
    "Condition",
    "Literal",
    "Node",
    "Normal",
    "Param",
    "RandInt",
    "Space",
    "Uniform",
    "compile_space",
    "describe",
    "expr_text",
    "is_finite_number",
    "space_eval",
]
