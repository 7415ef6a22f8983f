"""List the model zoo: published COCO checkpoints usable as `--weights <name>`."""
from __future__ import annotations

import argparse

from plugrcnn.zoo.catalog import zoo_entries
from plugrcnn.zoo.download import cache_home
from plugrcnn.zoo.resolve import check_url


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--urls", action="store_true", help="also print each entry's URL")


def run(args: argparse.Namespace) -> int:
    entries = zoo_entries()
    width = max(len(name) for name in entries)
    home = cache_home()
    print(f"{'name':<{width}}  {'COCO val2017 AP (published)':<34}  cached")
    for name, entry in entries.items():
        ap = ", ".join(f"{kind} {value:.1f}" for kind, value in entry.ap.items())
        file = check_url(entry.url)
        converted = home / "converted" / entry.source / f"{file.split('.', 1)[0]}.pth"
        cached = "yes" if converted.is_file() or (entry.source == "plugrcnn" and (home / "downloads" / file).is_file()) else "no"
        print(f"{name:<{width}}  {ap:<34}  {cached}")
        if args.urls:
            print(f"{'':<{width}}  {entry.url}")
    print(f"cache: {home} (PLUGRCNN_HOME)")
    return 0
