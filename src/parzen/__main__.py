"""``python -m parzen`` is the ``parzen`` command."""

from __future__ import annotations

import sys

from parzen.cli import main

sys.exit(main())
