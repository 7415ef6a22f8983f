"""Seeded random weights for a config, with frozen-BN statistics calibrated on one image.

A randomly initialised ResNet-50 with identity frozen batch norm blows its activations up, so its
detections are degenerate. Setting every frozen BN's statistics to those of its input on one
synthetic image keeps activations O(1), as in a trained network: good enough to exercise export
and `--verify` by hand (the class head's weights are widened too, so
scores pass the detection threshold) on a full-size model without downloading weights.

    python tools/calibrated_random_weights.py --config configs/mask_keypoint_rcnn_R50_FPN.yaml \
        --output r50.pth [--height 800 --width 1344] [key=value ...]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torchvision.ops import FrozenBatchNorm2d

from plugrcnn.config import load_config
from plugrcnn.modeling.build import build_model
from plugrcnn.modeling.weights import save_weights_atomic


def calibrate_frozen_bn(model: torch.nn.Module, image: torch.Tensor) -> None:
    def set_statistics(module: FrozenBatchNorm2d, args: tuple[torch.Tensor, ...]) -> None:
        x = args[0]
        module.running_mean.copy_(x.mean(dim=(0, 2, 3)))
        module.running_var.copy_(x.var(dim=(0, 2, 3)))

    hooks = [m.register_forward_pre_hook(set_statistics) for m in model.modules()
             if isinstance(m, FrozenBatchNorm2d)]
    with torch.no_grad():
        model.backbone(model.preprocess.normalize(image)[None])
    for hook in hooks:
        hook.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--height", type=int, default=800)
    parser.add_argument("--width", type=int, default=1344)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("opts", nargs="*")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    model = build_model(load_config(args.config, args.opts)).model.eval()
    # smooth colour blobs plus noise: structure at several scales
    gen = torch.Generator().manual_seed(args.seed)
    blobs = torch.rand(3, args.height // 16, args.width // 16, generator=gen)
    image = torch.nn.functional.interpolate(blobs[None], size=(args.height, args.width), mode="bilinear")[0]
    image = ((image * 0.8 + torch.rand(image.shape, generator=gen) * 0.2) * 255).to(torch.uint8)
    calibrate_frozen_bn(model, image)
    with torch.no_grad():  # confident, varied class scores, so detections pass the threshold
        for head in model.heads.values():
            cls_score = getattr(head, "cls_score", None)
            if cls_score is not None:
                cls_score.weight.normal_(0, 0.05, generator=gen)
                cls_score.bias.normal_(0, 1.0, generator=gen)
    save_weights_atomic({"model": model.state_dict()}, args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
