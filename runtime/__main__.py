"""``python -m runtime``: the same command line as the ``ledger`` console script."""

from __future__ import annotations

import sys

from runtime.cli import main

sys.exit(main())
