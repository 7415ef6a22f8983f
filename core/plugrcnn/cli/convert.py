"""Convert a foreign checkpoint into plugrcnn weights (torchvision or detectron2 models)."""
from __future__ import annotations

import argparse
from pathlib import Path

from plugrcnn.config import load_config
from plugrcnn.convert import detectron2, torchvision
from plugrcnn.errors import PlugrcnnError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", choices=["torchvision", "detectron2"], help="checkpoint family")
    parser.add_argument("--arch", default=None,
                        help=f"torchvision (required): {', '.join(torchvision.ARCHS)}; detectron2 "
                             f"(default: read from the checkpoint's keys): {', '.join(detectron2.ARCHS)}")
    parser.add_argument("--input", required=True, type=Path,
                        help="torchvision: its state_dict (.pth); detectron2: model_final_*.pkl or .pth")
    parser.add_argument("--output", required=True, type=Path, help="where to write plugrcnn weights")
    parser.add_argument("--config", type=Path, default=None,
                        help="target config (default: configs/<source>/<arch>.yaml)")


def run(args: argparse.Namespace) -> int:
    module = torchvision if args.source == "torchvision" else detectron2
    if args.arch is not None and args.arch not in module.ARCHS:
        raise PlugrcnnError(f"--arch {args.arch}: not a {args.source} architecture "
                            f"(known: {', '.join(module.ARCHS)})")
    if args.source == "torchvision":
        if args.arch is None:
            raise PlugrcnnError(f"--arch: required for torchvision ({', '.join(module.ARCHS)})")
        cfg = load_config(args.config or torchvision.default_config_path(args.arch))
        count = torchvision.convert_file(args.arch, args.input, args.output, cfg)
        arch = args.arch
    else:
        cfg = load_config(args.config) if args.config else None
        arch, count = detectron2.convert_file(args.input, args.output, args.arch, cfg)
    print(f"converted {count} tensors of {args.source} {arch} -> {args.output}")
    return 0
