"""One training step side by side: the same 2 images, the same targets (boxes, labels, polygon
masks or keypoints), forward + backward + SGD, the RoI/anchor sampling seeded the same before
each step (both samplers draw from torch's global generator, in their own order, so the sampled
sets differ; the counts and the work are the same)."""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pycocotools.mask as mask_utils
import torch

from bench_models import ARCHS, ROOT, synthetic_image
from tv_fixtures import make_torchvision_model

from plugrcnn.config import load_config
from plugrcnn.convert.torchvision import convert_torchvision
from plugrcnn.engine.losses import weighted_sum
from plugrcnn.heads.targets import ImageTargets
from plugrcnn.modeling.build import build_model

OBJECTS_PER_IMAGE = 4


def _annotations(size: int, model: str, seed: int) -> list[dict[str, Any]]:
    """COCO-style annotations: octagon polygons (and 17 keypoints inside each box)."""
    gen = torch.Generator().manual_seed(seed)
    annotations = []
    for i in range(OBJECTS_PER_IMAGE):
        w, h = (torch.rand(2, generator=gen) * 0.3 + 0.15).tolist()
        x, y = (torch.rand(2, generator=gen) * (1 - max(w, h))).tolist()
        x1, y1, bw, bh = x * size, y * size, w * size, h * size
        angles = [math.pi * k / 4 for k in range(8)]
        polygon = [v for a in angles for v in (x1 + bw * (0.5 + 0.5 * math.cos(a)),
                                               y1 + bh * (0.5 + 0.5 * math.sin(a)))]
        label = 1 if model == "keypoint" else int(torch.randint(1, 91, (1,), generator=gen))
        points = torch.rand(17, 2, generator=gen) * torch.tensor([bw, bh]) + torch.tensor([x1, y1])
        keypoints = torch.cat([points, torch.full((17, 1), 2.0)], 1).flatten().tolist()
        annotations.append({"id": seed * 10 + i, "bbox": [x1, y1, bw, bh], "label": label,
                            "category_id": label, "iscrowd": 0, "segmentation": [polygon],
                            "keypoints": keypoints})
    return annotations


def _torchvision_target(annotations: list[dict[str, Any]], size: int, model: str) -> dict[str, torch.Tensor]:
    boxes = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in annotations)])
    target = {"boxes": boxes, "labels": torch.tensor([a["label"] for a in annotations])}
    if model == "mask":
        rles = [mask_utils.merge(mask_utils.frPyObjects(a["segmentation"], size, size)) for a in annotations]
        target["masks"] = torch.from_numpy(np.ascontiguousarray(mask_utils.decode(rles))).permute(2, 0, 1)
    else:
        target["keypoints"] = torch.tensor([a["keypoints"] for a in annotations]).view(-1, 17, 3)
    return target


def _plugrcnn_targets(built: Any, annotations: list[dict[str, Any]], size: int) -> ImageTargets:
    target = _torchvision_target(annotations, size, "keypoint")  # boxes and labels only
    heads = {name: head.target_codec().read(annotations, size, size)
             for name, head in built.model.heads.items()
             if head.train_rois == "foreground_with_targets"}
    return ImageTargets(gt_boxes=target["boxes"], gt_labels=target["labels"],
                        gt_crowd=torch.zeros(len(annotations), dtype=torch.bool), heads=heads)


class TrainPair:
    """Both models in training mode with an SGD optimiser each, and the same batch."""

    def __init__(self, model: str, size: int, seed: int = 0, amp: bool = False) -> None:
        arch = ARCHS[model]
        # amp: both forwards under bfloat16 autocast (what solver.amp does on a CPU)
        self.autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp)
        self.tv = make_torchvision_model(arch, seed=seed).train()
        self.tv.transform.min_size, self.tv.transform.max_size = (size,), size
        cfg = load_config(ROOT / "configs" / "torchvision" / f"{arch}.yaml", ["model.device=cpu"])
        self.built = build_model(cfg)
        self.built.model.load_state_dict(convert_torchvision(self.tv.state_dict(), cfg, arch))
        self.built.model.train()
        self.weights = cfg.model.loss_weights
        self.images = [synthetic_image(size, size, seed=seed + i) for i in range(2)]
        annotations = [_annotations(size, model, seed + i) for i in range(2)]
        self.tv_targets = [_torchvision_target(a, size, model) for a in annotations]
        self.batch = [{"image": im, "targets": _plugrcnn_targets(self.built, a, size)}
                      for im, a in zip(self.images, annotations)]
        self.tv_opt = _sgd(self.tv)
        self.opt = _sgd(self.built.model)

    def torchvision_step(self, seed: int) -> tuple[float, float]:
        """(seconds, total loss) of one step of torchvision's model."""
        torch.manual_seed(seed)
        start = time.perf_counter()
        with self.autocast():
            losses = self.tv([im.float() / 255 for im in self.images], self.tv_targets)
            total = sum(losses.values())
        self.tv_opt.zero_grad(set_to_none=True)
        total.backward()
        self.tv_opt.step()
        return time.perf_counter() - start, float(total.detach())

    def plugrcnn_step(self, seed: int) -> tuple[float, float]:
        """(seconds, total loss) of one step of plugrcnn's model (forward, criterion, backward)."""
        torch.manual_seed(seed)
        start = time.perf_counter()
        with self.autocast():
            losses = self.built.criterion(self.built.model(self.batch))
            total = weighted_sum(losses, self.weights)
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.opt.step()
        return time.perf_counter() - start, float(total.detach())


def _sgd(model: torch.nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(params, lr=1e-3, momentum=0.9, weight_decay=1e-4)
