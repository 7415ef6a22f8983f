"""Convert a foreign checkpoint into plugrcnn weights (torchvision detection models)."""
from __future__ import annotations

import argparse
from pathlib import Path

from plugrcnn.config import load_config
from plugrcnn.convert.torchvision import ARCHS, convert_file, default_config_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", choices=["torchvision"], help="checkpoint family")
    parser.add_argument("--arch", required=True, choices=ARCHS)
    parser.add_argument("--input", required=True, type=Path, help="the torchvision state_dict (.pth)")
    parser.add_argument("--output", required=True, type=Path, help="where to write plugrcnn weights")
    parser.add_argument("--config", type=Path, default=None,
                        help="target config (default: configs/torchvision/<arch>.yaml)")


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config or default_config_path(args.arch))
    count = convert_file(args.arch, args.input, args.output, cfg)
    print(f"converted {count} tensors of {args.arch} -> {args.output}")
    return 0
