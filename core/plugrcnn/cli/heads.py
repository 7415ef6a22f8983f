"""List the installed heads: name, distribution, version, plugin module."""
from __future__ import annotations

import argparse

from plugrcnn.plugins.manager import list_installed_heads


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    rows = list_installed_heads()
    if not rows:
        print("no heads installed (pip install plugrcnn-class plugrcnn-box ...)")
        return 0
    header = ("head", "distribution", "version", "plugin")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
    return 0
