"""Evaluate a trained model on the config's validation split with COCOeval (every head's kind)."""
from __future__ import annotations

import argparse
from pathlib import Path

from plugrcnn.config import load_config
from plugrcnn.outputs import prepare_output_dir
from plugrcnn.zoo.resolve import resolve_weights_and_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None,
                        help="the model's config (default: the one a zoo name pairs with)")
    parser.add_argument("--weights", required=True,
                        help="a local file, an https:// URL, or a zoo name (`plugrcnn zoo`)")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="where metrics.json and coco_results.json go (default: <output_dir>/eval)")
    parser.add_argument("opts", nargs="*", help="config overrides key.sub=value")


def run(args: argparse.Namespace) -> int:
    from plugrcnn.data.build import load_split
    from plugrcnn.evaluation.coco_evaluator import evaluate, format_table
    from plugrcnn.inference.predictor import Predictor

    weights, config = resolve_weights_and_config(args.weights, args.config)
    cfg = load_config(config, args.opts)
    out = args.output_dir or Path(cfg.output_dir) / "eval"
    prepare_output_dir(out)  # before the long run, not after it
    dataset = load_split(cfg, "val", training=False)
    predictor = Predictor.from_config(cfg, str(weights))
    results = evaluate(predictor, dataset, out)
    print(format_table(results))
    print(f"{len(dataset)} image(s) evaluated ({cfg.eval.backend}) -> {out}: metrics.json, "
          f"coco_results.json, per_category_ap.md/.png, pr_curves.png, worst/")
    return 0
