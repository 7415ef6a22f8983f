"""plugrcnn: a two-stage detector whose heads are plugins."""
from __future__ import annotations

__version__ = "0.1.0"
