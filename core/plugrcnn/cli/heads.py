"""Installed heads: list them (`plugrcnn heads`), or write a new head plugin (`heads new NAME`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from plugrcnn.plugins.manager import list_installed_heads


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=("list", "new"), default="list",
                        help="list the installed heads (default), or write a new head plugin")
    parser.add_argument("name", nargs="?", help="new: the head's name (the key under model.heads)")
    parser.add_argument("--requires", action="append", default=[], metavar="HEAD",
                        help="new: a head it builds on (repeatable)")
    parser.add_argument("--consumes", action="append", default=[], metavar="HEAD.KEY",
                        help="new: a forward output of a required head it reads, as <head>.<key>")
    parser.add_argument("--output", type=Path, default=Path("."), help="new: the folder to write into")


def run(args: argparse.Namespace) -> int:
    if args.action == "new":
        return _new(args)
    rows = list_installed_heads()
    if not rows:
        print("no heads installed (pip install plugrcnn-class plugrcnn-box ...)")
        return 0
    header = ("head", "distribution", "version", "plugin")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
    return 0


def _new(args: argparse.Namespace) -> int:
    from plugrcnn.errors import PlugrcnnError
    from plugrcnn.scaffold import write_head_skeleton

    if not args.name:
        raise PlugrcnnError("heads new: give the head's name, e.g. `plugrcnn heads new my_head`")
    requires = tuple(r for item in args.requires for r in item.split(",") if r)
    consumes = tuple(c for item in args.consumes for c in item.split(",") if c)
    root = write_head_skeleton(args.name, args.output, requires, consumes)
    print(f"wrote {root}: install it with `pip install -e {root}`, then run `pytest {root}`")
    return 0
