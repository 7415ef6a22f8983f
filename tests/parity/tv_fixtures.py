"""Seeded random torchvision detection models whose detections are not empty.

A freshly initialised torchvision detector scores every class about 1/91, under the 0.05
threshold; widening the classifier's weights gives confident, varied detections to compare.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torchvision.models.detection
from torchvision.io import write_png
from torchvision.models.detection import FasterRCNN, KeypointRCNN, MaskRCNN
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.ops import FrozenBatchNorm2d

from plugrcnn.testing.workbench import randomize_norm_statistics  # shared with the conformance kit


ARCH_CLASSES = {
    "fasterrcnn_resnet50_fpn": (FasterRCNN, 91),
    "maskrcnn_resnet50_fpn": (MaskRCNN, 91),
    "keypointrcnn_resnet50_fpn": (KeypointRCNN, 2),
}
V2_ARCHS = ("fasterrcnn_resnet50_fpn_v2", "maskrcnn_resnet50_fpn_v2")


def make_torchvision_model(arch: str, seed: int = 0, cls_std: float = 0.01,
                           delta_std: float | None = None) -> torch.nn.Module:
    """torchvision's `arch` as its COCO checkpoints are built (frozen BN), random weights.

    `delta_std`, if given, redraws the RPN's and the box head's delta weights with it: a small
    value keeps proposals and detections close to the anchors (random features otherwise give
    sliver boxes a fraction of a pixel wide, useless for comparing masks).
    """
    torch.manual_seed(seed)
    if arch in V2_ARCHS:  # torchvision's own v2 builders (BatchNorm everywhere), no weights
        model = getattr(torchvision.models.detection, arch)(weights=None, weights_backbone=None,
                                                             num_classes=91)
    else:
        model_class, num_classes = ARCH_CLASSES[arch]
        backbone = resnet_fpn_backbone(backbone_name="resnet50", weights=None,
                                       norm_layer=FrozenBatchNorm2d, trainable_layers=3)
        model = model_class(backbone, num_classes=num_classes)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        randomize_norm_statistics(model, gen)
        predictor = model.roi_heads.box_predictor
        predictor.cls_score.weight.normal_(0, cls_std, generator=gen)
        predictor.cls_score.bias.normal_(0, 1.0, generator=gen)
        predictor.bbox_pred.weight.normal_(0, 0.01, generator=gen)
        if delta_std is not None:
            predictor.bbox_pred.weight.normal_(0, delta_std, generator=gen)
            model.rpn.head.bbox_pred.weight.normal_(0, delta_std, generator=gen)
        if isinstance(model, MaskRCNN):
            # logits of a few units, not saturated: masks with structure and few pixels near 0.5
            logits = model.roi_heads.mask_predictor.mask_fcn_logits
            logits.weight.normal_(0, 0.005, generator=gen)
            logits.bias.normal_(0, 1.0, generator=gen)
    return model.eval()


def make_images(seed: int = 0) -> dict[str, torch.Tensor]:
    """uint8 RGB images of several sizes and aspect ratios with some structure in them."""
    gen = torch.Generator().manual_seed(seed)
    sizes = {"wide.png": (240, 420), "tall.png": (500, 300), "square.png": (333, 333)}
    images = {}
    for name, (h, w) in sizes.items():
        base = torch.rand(3, h // 8 + 1, w // 8 + 1, generator=gen)
        smooth = torch.nn.functional.interpolate(base[None], size=(h, w), mode="bilinear")[0]
        noise = torch.rand(3, h, w, generator=gen) * 0.2
        images[name] = ((smooth * 0.8 + noise).clamp(0, 1) * 255).to(torch.uint8)
    return images


def predict_converted(tmp_path: Path, arch: str, tv_model: torch.nn.Module,
                      images: dict[str, torch.Tensor], overrides: tuple[str, ...] = ()) -> dict[str, list]:
    """Save `tv_model`, `plugrcnn convert` it, `plugrcnn predict` `images` with the torchvision
    config of `arch`; return predictions.json (file name -> COCO records)."""
    from plugrcnn.cli import main

    torch.save(tv_model.state_dict(), tmp_path / "tv.pth")
    (tmp_path / "images").mkdir()
    for name, image in images.items():
        write_png(image, str(tmp_path / "images" / name))
    assert main(["convert", "torchvision", "--arch", arch, "--input", str(tmp_path / "tv.pth"),
                 "--output", str(tmp_path / "ours.pth")]) == 0
    config = Path(__file__).resolve().parents[2] / "configs" / "torchvision" / f"{arch}.yaml"
    # on the CPU, as the torchvision model here: a GPU's sums differ (~1e-4 px), enough to move
    # torchvision's integer mask paste by a pixel column on thin boxes
    assert main(["predict", "--config", str(config), "--weights", str(tmp_path / "ours.pth"),
                 "--input", str(tmp_path / "images"), "--output", str(tmp_path / "out"),
                 "model.device=cpu", *overrides]) == 0
    predictions = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert sorted(predictions) == sorted(images)
    for name in images:
        assert (tmp_path / "out" / f"{Path(name).name}.png").is_file()
    return predictions


def assert_same_detections(records: list[dict], ref: dict[str, torch.Tensor]) -> None:
    """Same count and labels in the same order, boxes within 0.01 px of torchvision's."""
    assert len(ref["boxes"]) > 10, "the fixture should give detections to compare"
    assert len(records) == len(ref["boxes"])
    assert [r["category_id"] for r in records] == ref["labels"].tolist()
    boxes = torch.tensor([r["bbox"] for r in records])
    boxes[:, 2:] += boxes[:, :2]  # XYWH -> XYXY
    torch.testing.assert_close(boxes, ref["boxes"], atol=0.01, rtol=0)
