"""Time the two COCOeval backends side by side on a generated validation set.

    python tools/bench_cocoeval.py --images 3000 --work /tmp/bench_cocoeval

Generates the synthetic data set (shapes with masks, stick figures with keypoints), makes noisy
detections from its GT (plugrcnn.testing.coco_results) and runs evaluate + accumulate +
summarize per kind with each backend, printing seconds and AP (which must agree).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import yaml

from plugrcnn.data.synthetic import generate_synthetic_coco
from plugrcnn.evaluation.coco_evaluator import coco_from_dict, evaluate_records
from plugrcnn.testing.coco_results import perturbed_results

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_cocoeval"))
    parser.add_argument("--false-per-image", type=float, default=1.0,
                        help="mean false detections per image (COCO-style runs keep up to 100)")
    args = parser.parse_args()
    gt_file = args.work / "annotations" / "instances_val.json"
    if not gt_file.exists():
        generate_synthetic_coco(args.work, seed=0, num_train=1, num_val=args.images,
                                image_size=args.size, progress=True)
    ground_truth = json.loads(gt_file.read_text())
    records = perturbed_results(ground_truth, seed=0, false_per_image=args.false_per_image)
    sigmas = yaml.safe_load((ROOT / "configs/demo/synthetic_keypoints.yaml").read_text()
                            )["model"]["heads"]["keypoint"]["oks_sigmas"]
    kp_cats = [c["id"] for c in ground_truth["categories"] if c.get("keypoints")]
    print(f"{len(ground_truth['images'])} images, {len(ground_truth['annotations'])} GT, "
          f"{len(records)} detections")
    print(f"{'kind':<10}{'backend':<18}{'seconds':>9}{'AP':>10}")
    for kind in ("bbox", "segm", "keypoints"):
        params = {"kpt_oks_sigmas": sigmas} if kind == "keypoints" else {}
        cats = kp_cats if kind == "keypoints" else None
        for backend in ("pycocotools", "faster-coco-eval"):
            start = time.perf_counter()
            gt = coco_from_dict(ground_truth, backend)
            ap = evaluate_records(gt, records, kind, params, cats, backend)["AP"]
            print(f"{kind:<10}{backend:<18}{time.perf_counter() - start:9.2f}{ap:10.6f}", flush=True)


if __name__ == "__main__":
    main()
