"""The one exception type that means "the user's input is wrong"; the CLI prints it as one line."""
from __future__ import annotations


class PlugrcnnError(ValueError):
    """Bad input named precisely: the file, the key or the id, and what to do about it."""
