"""An objective that logs its whole environment into its result (scenario 31), as a user's
objective that records "the run's configuration" might. Workers import it by name
(``tests.support.leaky``)."""

from __future__ import annotations

import os
from typing import Any


def logs_its_environment(p: dict[str, Any]) -> dict[str, Any]:
    """Return the loss and every environment variable (names MongoDB can store as keys)."""
    environ = {k: v for k, v in os.environ.items() if "." not in k and not k.startswith("$")}
    return {"loss": float(p["x"] ** 2), "status": "ok", "environ": environ}
