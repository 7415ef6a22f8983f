"""Detect objects in an image or a folder: DIR/predictions.json and one drawn PNG per image."""
from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from torchvision.io import write_png
from tqdm import tqdm

from plugrcnn.config import load_config
from plugrcnn.zoo.resolve import resolve_weights_and_config
from plugrcnn.errors import PlugrcnnError
from plugrcnn.inference.images import list_images, read_image
from plugrcnn.inference.predictor import Predictor


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None,
                        help="the model's config (default: the one a zoo name pairs with)")
    parser.add_argument("--weights", required=True,
                        help="a local file, an https:// URL, or a zoo name (`plugrcnn zoo`)")
    parser.add_argument("--input", required=True, type=Path, help="an image or a folder of images")
    parser.add_argument("--output", required=True, type=Path, help="output folder")
    parser.add_argument("--no-draw", action="store_true", help="skip the drawn PNGs")
    parser.add_argument("--draw-score-thresh", type=float, default=0.5,
                        help="draw detections scoring at least this (all are written to the JSON)")
    parser.add_argument("opts", nargs="*", help="config overrides key.sub=value")


def run(args: argparse.Namespace) -> int:
    weights, config = resolve_weights_and_config(args.weights, args.config)
    cfg = load_config(config, args.opts)
    files = list_images(args.input)
    images = {f: read_image(f) for f in files}  # fail on a bad image before any compute
    names = [f.name for f in files]
    if len(set(names)) != len(names):
        raise PlugrcnnError(f"{args.input}: two inputs share a file name")
    predictor = Predictor.from_config(cfg, str(weights))
    args.output.mkdir(parents=True, exist_ok=True)
    results: dict[str, list] = {}
    for path in tqdm(files, desc="predict", unit="img", disable=len(files) < 2):
        detection = predictor([images[path]])[0]
        results[path.name] = predictor.coco_records(detection)
        if not args.no_draw:
            write_png(predictor.draw(images[path], detection, args.draw_score_thresh),
                      str(args.output / f"{path.stem}.png"))
    write_json_atomic(results, args.output / "predictions.json")
    total = sum(len(v) for v in results.values())
    print(f"{len(files)} image(s), {total} detection(s) -> {args.output / 'predictions.json'}")
    return 0


def write_json_atomic(obj: object, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)
