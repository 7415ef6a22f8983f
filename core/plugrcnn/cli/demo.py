"""The whole pipeline on a fresh machine: generate data, train box+mask+keypoints, evaluate, draw."""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path

from plugrcnn.config import load_config

ROOT = Path(__file__).resolve().parents[3]
DEMO_CONFIG = ROOT / "configs" / "demo" / "synthetic_demo.yaml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-dir", type=Path, default=Path("output/demo"))
    parser.add_argument("--config", type=Path, default=DEMO_CONFIG)
    parser.add_argument("--fresh", action="store_true",
                        help="start training from scratch even if a checkpoint is there")
    parser.add_argument("opts", nargs="*", help="config overrides key.sub=value")


def _synthetic_data_complete(data: Path, marker: Path, synthetic: dict) -> bool:
    """The data set of these settings is there: its marker, annotation files and every image
    (a folder emptied since, e.g. by hand, makes the demo generate it again)."""
    if not marker.is_file() or json.loads(marker.read_text()) != synthetic:
        return False
    for split, count in (("train", synthetic["num_train"]), ("val", synthetic["num_val"])):
        if not (data / "annotations" / f"instances_{split}.json").is_file():
            return False
        folder = data / split
        if not folder.is_dir() or sum(1 for _ in folder.glob("*.png")) != count:
            return False
    return True


def run(args: argparse.Namespace) -> int:
    from plugrcnn.data.build import load_split
    from plugrcnn.data.synthetic import generate_synthetic_coco
    from plugrcnn.engine.checkpoint import find_last_checkpoint
    from plugrcnn.engine.training import train_from_config
    from plugrcnn.evaluation.coco_evaluator import evaluate, format_table
    from plugrcnn.inference.predictor import Predictor
    from plugrcnn.inference.drawing import draw_grid
    from plugrcnn.outputs import prepare_output_dir, write_json_atomic

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    start = time.time()
    out: Path = args.output_dir
    prepare_output_dir(out)  # a file in the way or no permission: fail before the long run
    data = out / "data"
    cfg = load_config(args.config, [
        f"data.train.instances={data}/annotations/instances_train.json", f"data.train.images={data}/train",
        f"data.val.instances={data}/annotations/instances_val.json", f"data.val.images={data}/val",
        f"output_dir={out}/train", *args.opts])
    synthetic = dataclasses.asdict(cfg.data.synthetic)  # checked at load like every key
    marker = data / "synthetic.json"
    if not _synthetic_data_complete(data, marker, synthetic):
        print(f"[1/4] generating the synthetic data set -> {data}")
        generate_synthetic_coco(data, progress=True, **synthetic)
        write_json_atomic(marker, synthetic)  # written last: the data set is complete
    else:
        print(f"[1/4] synthetic data set already in {data}")
    resume = not args.fresh and find_last_checkpoint(Path(cfg.output_dir)) is not None
    print(f"[2/4] training ({'resuming' if resume else 'from scratch'}) -> {cfg.output_dir}")
    train_from_config(cfg, resume=resume)
    trained = load_config(Path(cfg.output_dir) / "config.yaml")
    predictor = Predictor.from_config(trained, str(Path(cfg.output_dir) / "model_final.pth"))
    print("[3/4] evaluating on the validation split (COCOeval)")
    val = load_split(trained, "val", training=False)
    results = evaluate(predictor, val, out / "eval")
    print(format_table(results))
    print("[4/4] drawing predictions")
    grid = draw_grid(predictor, val, out / "predictions", count=12)
    print(f"\ndone in {time.time() - start:.0f} s: metrics {out / 'eval' / 'metrics.json'}, "
          f"pictures {grid}, loss curves {Path(cfg.output_dir) / 'loss_curves.png'}")
    return 0
