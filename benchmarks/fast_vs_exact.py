"""Fast mode against exact mode on a trained model: the export-parity figures per image.

    python benchmarks/fast_vs_exact.py --config output/demo/train/config.yaml \
        --weights output/demo/train/model_final.pth --images output/demo/data/val [--limit 20]

Both predictors are built as `plugrcnn predict` builds them (model.precision exact / fast).
Prints, per image and overall: detections matched (same class, box IoU >= 0.5), the largest box
and keypoint differences, the smallest mask IoU, and the fraction within the limits.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from parity_figures import LIMITS, compare  # noqa: E402

from plugrcnn.config import load_config  # noqa: E402
from plugrcnn.inference.images import list_images, read_image  # noqa: E402
from plugrcnn.inference.predictor import Predictor  # noqa: E402


def as_reference(det: dict) -> dict:
    """Exact-mode pred_* fields in the shape `compare` reads for its reference."""
    ref = {"boxes": det["pred_boxes"], "labels": det["pred_classes"], "scores": det["scores"]}
    if "pred_masks" in det:
        ref["masks"] = det["pred_masks"][:, None].float()
    if "pred_keypoints" in det:
        ref["keypoints"] = det["pred_keypoints"]
    return ref


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--weights", required=True, type=Path)
    parser.add_argument("--images", required=True, type=Path)
    parser.add_argument("--limit", type=int, default=20)
    args = parser.parse_args()
    exact = Predictor.from_config(load_config(args.config, ["model.device=cpu"]), str(args.weights))
    fast = Predictor.from_config(load_config(args.config, ["model.device=cpu", "model.precision=fast"]),
                                 str(args.weights))
    inp = exact.cfg.model.input
    total = matched = within = 0.0
    worst = {"box": 0.0, "mask": 1.0, "keypoint": 0.0}
    for path in list_images(args.images)[: args.limit]:
        image = read_image(path, inp.max_image_pixels, (inp.min_size_test, inp.max_size_test))
        figures = compare(as_reference(exact([image])[0]), fast([image])[0])
        count = figures["count_torchvision"]
        total, matched = total + count, matched + figures["matched"]
        within += figures["within_limits_fraction"] * count
        worst["box"] = max(worst["box"], figures["max_box_diff_px"])
        worst["mask"] = min(worst["mask"], figures.get("min_mask_iou", 1.0))
        worst["keypoint"] = max(worst["keypoint"], figures.get("max_keypoint_diff_px", 0.0))
        print(f"{path.name}: {figures['matched']} of {count} matched, box {figures['max_box_diff_px']:.3f} px, "
              f"mask IoU {figures.get('min_mask_iou', 1.0):.4f}, keypoints "
              f"{figures.get('max_keypoint_diff_px', 0.0):.2f} px")
    print(f"overall: {int(matched)} of {int(total)} matched; {within / max(total, 1):.3f} within the limits "
          f"{LIMITS}; max box diff {worst['box']:.3f} px, min mask IoU {worst['mask']:.4f}, "
          f"max keypoint diff {worst['keypoint']:.2f} px")
    return 0


if __name__ == "__main__":
    sys.exit(main())
