"""CPU latency of whole models that differ only in their backbone, eager PyTorch, side by side.

    python benchmarks/backbone_latency.py [--height 800 --width 1066] [--repeats 5] [--threads N]

Every config is built with random weights (no file is read or downloaded), except the class
head's last layer: it scores every proposal as class 1 with probability ~1, so each model keeps
its `detections_per_image` (100) detections after NMS and runs the mask head and the paste on
them, as a trained model does on a busy image, and every model does the same work after its
backbone (random class logits would let a different number of detections through per model).
The models run
interleaved (one image each, in turn, `repeats` times after one warm-up round); printed are the
median and range of the end-to-end `predict` and of the backbone (+ FPN) alone, and the ratio to
the first config's median.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from plugrcnn.config import load_config
from plugrcnn.modeling.build import build_model

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ["configs/mask_rcnn_R50_FPN.yaml", "configs/mask_rcnn_MobileNetV3_FPN.yaml",
           "configs/mask_rcnn_RegNetY_400MF_FPN.yaml"]


def _timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def _confident(model: torch.nn.Module) -> torch.nn.Module:
    """Every proposal scored as class 1 (logit 20 against 0): 100 detections per image."""
    layer = model.heads["class"].cls_score
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()
        layer.bias[1] = 20.0
    return model


def _detections(model: torch.nn.Module, image: torch.Tensor) -> int:
    return len(model.predict([image], False)[0]["pred_boxes"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=CONFIGS)
    parser.add_argument("--height", type=int, default=800)
    parser.add_argument("--width", type=int, default=1066)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    torch.manual_seed(0)
    models = {}
    for path in args.configs:
        cfg = load_config(ROOT / path, ["model.device=cpu"])
        models[cfg.model.backbone.name] = _confident(build_model(cfg).model.eval())
    image = torch.randint(0, 256, (3, args.height, args.width), dtype=torch.uint8)
    # the image is already at the test size: no resize, so every model sees the same pixels
    padded = models[next(iter(models))].preprocess([image], resize=False).tensor
    counts = {name: _detections(model, image) for name, model in models.items()}
    times = {name: {"end-to-end": [], "backbone": []} for name in models}
    with torch.inference_mode():
        for round_index in range(args.repeats + 1):  # round 0 warms up
            for name, model in models.items():
                e2e = _timed(model.predict, [image], False)
                backbone = _timed(model.backbone, padded)
                if round_index:
                    times[name]["end-to-end"].append(e2e)
                    times[name]["backbone"].append(backbone)
    print(f"{args.height}x{args.width}, {torch.get_num_threads()} threads, median of {args.repeats} "
          f"interleaved runs (min-max), seconds; detections per model: {counts}")
    first = next(iter(times))
    for stage in ("end-to-end", "backbone"):
        base = statistics.median(times[first][stage])
        for name, stages in times.items():
            values = stages[stage]
            median = statistics.median(values)
            print(f"{stage:10s}  {name:24s}  {median:6.3f}  ({min(values):.3f}-{max(values):.3f})  "
                  f"{base / median:5.2f}x the speed of {first}")


if __name__ == "__main__":
    main()
