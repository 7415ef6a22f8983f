"""Detect objects in an image or a folder: DIR/predictions.json and one drawn PNG per image.

The drawing of `NAME.EXT` is `DIR/NAME.EXT.png` (the full input name: `a.png` and `a.jpg` in
one folder get two drawings). Every output is written atomically.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from torchvision.io import encode_png

from plugrcnn.config import load_config
from plugrcnn.inference.images import list_images, read_header, read_image
from plugrcnn.zoo.resolve import resolve_weights_and_config
from plugrcnn.inference.predictor import Predictor
from plugrcnn.outputs import prepare_output_dir, write_bytes_atomic, write_json_atomic
from plugrcnn.progress import progress


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None,
                        help="the model's config (default: the one a zoo name pairs with)")
    parser.add_argument("--weights", required=True,
                        help="a local file, an https:// URL, or a zoo name (`plugrcnn zoo`)")
    parser.add_argument("--input", required=True, type=Path, help="an image or a folder of images")
    parser.add_argument("--output", required=True, type=Path, help="output folder")
    parser.add_argument("--no-draw", action="store_true", help="skip the drawn PNGs")
    parser.add_argument("--draw-score-thresh", type=score_threshold, default=0.5,
                        help="draw detections scoring at least this (all are written to the JSON)")
    parser.add_argument("--fast", action="store_true",
                        help="model.precision=fast: bf16 autocast on CPUs with bf16, fp16 on CUDA")
    parser.add_argument("opts", nargs="*", help="config overrides key.sub=value")


def run(args: argparse.Namespace) -> int:
    weights, config = resolve_weights_and_config(args.weights, args.config)
    # --fast first: an explicit model.precision=... among the overrides wins
    cfg = load_config(config, [*(["model.precision=fast"] if args.fast else []), *args.opts])
    inp = cfg.model.input
    files = list_images(args.input)
    # every header checked before any pixel is decoded, every image decoded before any compute
    for path in files:
        read_header(path, inp.max_image_pixels, (inp.min_size_test, inp.max_size_test))
    images = {f: read_image(f, inp.max_image_pixels, (inp.min_size_test, inp.max_size_test)) for f in files}
    predictor = Predictor.from_config(cfg, str(weights))
    prepare_output_dir(args.output)
    results: dict[str, list] = {}
    for path in progress(files, desc="predict", unit="img", enabled=len(files) > 1):
        detection = predictor([images[path]])[0]
        results[path.name] = predictor.coco_records(detection)
        if not args.no_draw:
            drawn = predictor.draw(images[path], detection, args.draw_score_thresh)
            write_bytes_atomic(args.output / drawing_name(path), encode_png(drawn).numpy().tobytes())
    write_json_atomic(args.output / "predictions.json", results)
    total = sum(len(v) for v in results.values())
    drawn = "" if args.no_draw else f" and {len(files)} drawn PNG(s) in {args.output}"
    print(f"{len(files)} image(s), {total} detection(s) -> {args.output / 'predictions.json'}{drawn}")
    return 0


def drawing_name(path: Path) -> str:
    """`a.jpg` -> `a.jpg.png`: the whole input name, so `a.png` and `a.jpg` never collide."""
    return f"{path.name}.png"


def score_threshold(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:  # also false for nan
        raise argparse.ArgumentTypeError(f"must be a score in [0, 1], got {text}")
    return value
