"""Parameters, FLOPs per stage (backbone, RPN, each head) and peak memory of one inference."""
from __future__ import annotations

import argparse
from pathlib import Path

from plugrcnn.config import load_config
from plugrcnn.errors import PlugrcnnError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--weights", type=Path, default=None,
                        help="default: the seeded initial weights (FLOPs do not depend on them)")
    parser.add_argument("--height", type=int, default=None, help="image height (default: min_size_test)")
    parser.add_argument("--width", type=int, default=None, help="image width (default: max_size_test)")
    parser.add_argument("--device", default=None, help="cpu | cuda | cuda:N (default: model.device)")
    parser.add_argument("opts", nargs="*", help="config overrides key.sub=value")


def run(args: argparse.Namespace) -> int:
    import torch

    from plugrcnn.analysis import analyze_inference, format_analysis
    from plugrcnn.inference.predictor import Predictor

    if (args.height is None) != (args.width is None):
        raise PlugrcnnError("give both --height and --width, or neither")
    # every detection slot filled: the instance heads' cost is the worst case, not weight-dependent
    opts = ["model.detection.score_thresh=0.0", *args.opts]
    if args.device:
        opts.append(f"model.device={args.device}")
    cfg = load_config(args.config, opts)
    inp = cfg.model.input
    height, width = (args.height, args.width) if args.height else (inp.min_size_test, inp.max_size_test)
    if height <= 0 or width <= 0:
        raise PlugrcnnError(f"--height/--width must be positive, got {height}x{width}")
    torch.manual_seed(0)
    predictor = Predictor.from_config(cfg, None if args.weights is None else str(args.weights))
    image = torch.rand(3, height, width, generator=torch.Generator().manual_seed(0)).to(predictor.device)
    print(f"{args.config}: one {height}x{width} image on {predictor.device}")
    print(format_analysis(analyze_inference(predictor.model, image)))
    return 0
