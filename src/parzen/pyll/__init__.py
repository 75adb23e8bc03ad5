"""hyperopt's ``pyll`` as search spaces use it: ``scope``, ``as_apply`` and the node types.

``from hyperopt.pyll import scope`` becomes ``from parzen.pyll import scope``; the calls stay
the same. Expressions are small frozen dataclasses (``parzen.space``) that ``space_eval``
evaluates after the labels are sampled; ``parzen.pyll.stochastic.sample`` draws a value of a
whole space (it is imported with ``parzen``).
"""

from __future__ import annotations

from parzen.pyll.base import Apply, Literal, PyllImportError, as_apply, scope

__all__ = ["Apply", "Literal", "PyllImportError", "as_apply", "scope"]
