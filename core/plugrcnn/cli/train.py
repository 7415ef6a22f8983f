"""Train a model on COCO-format data (one process, or many under torchrun)."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from dataclasses import replace

from plugrcnn.config import load_config
from plugrcnn.outputs import prepare_output_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--output-dir", type=Path, default=None, help="default: the config's output_dir")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    parser.add_argument("opts", nargs="*", help="config overrides key.sub=value")


def run(args: argparse.Namespace) -> int:
    from plugrcnn.engine.distributed import shutdown_distributed
    from plugrcnn.engine.training import train_from_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    cfg = load_config(args.config, args.opts)  # typed and checked, heads and solver included
    if args.output_dir is not None:
        cfg = replace(cfg, output_dir=str(args.output_dir))
    prepare_output_dir(Path(cfg.output_dir))  # a file in the way or no permission: fail now
    result = train_from_config(cfg, resume=args.resume)
    # under torchrun, leave the process group once every rank is done (only after success: a
    # failed rank exits with its error instead of waiting at a barrier the others never reach)
    shutdown_distributed()
    out = Path(cfg.output_dir)
    print(f"trained to iteration {result.get('iteration')} -> {out}: {out / 'model_final.pth'}, "
          f"config.yaml, metrics.jsonl, loss_curves.png")
    return 0
