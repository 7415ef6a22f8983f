"""`python -m plugrcnn.cli ...` (what torchrun starts for multi-process training)."""
from __future__ import annotations

import sys

from plugrcnn.cli import main

sys.exit(main())
