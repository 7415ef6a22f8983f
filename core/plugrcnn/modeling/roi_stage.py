"""Runs the enabled heads on RoIs: training (sampled RoIs -> losses) and inference (detections).

The stage never names a head. It groups heads by what they read (a shared trunk, or RoIAlign at
a resolution), pools once per group on the union of the RoIs its heads want, and hands each head
its rows. Shape shorthand: R RoIs (all images), C channels, S pooler resolution, D detections.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from plugrcnn.config.schema import ModelConfig
from plugrcnn.heads.base import Head
from plugrcnn.heads.targets import ImageTargets
from plugrcnn.modeling.detection import select_detections
from plugrcnn.modeling.poolers import MultiLevelRoIAlign
from plugrcnn.modeling.sampler import SampledRoIs, sample_rois

ExtraLosses = Callable[..., list[dict[str, torch.Tensor] | None]]


def _group_key(head: Head) -> str:
    return f"trunk:{head.roi_input.trunk}" if head.roi_input.trunk else f"pool:{head.roi_input.resolution}"


class RoIStage(nn.Module):
    def __init__(self, cfg: ModelConfig, heads: dict[str, Head], trunks: dict[str, nn.Module],
                 scales: list[float], extra_losses: ExtraLosses | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.heads = nn.ModuleDict(heads)  # already in dependency order
        self.trunks = nn.ModuleDict(trunks)
        resolutions = {h.roi_input.resolution for h in heads.values() if not h.roi_input.trunk}
        resolutions |= {t.resolution for t in trunks.values()}
        p = cfg.pooler
        self.poolers = nn.ModuleDict({
            str(r): MultiLevelRoIAlign(output_size=r, scales=scales, sampling_ratio=p.sampling_ratio,
                                       aligned=p.aligned, canonical_box_size=p.canonical_box_size,
                                       canonical_level=p.canonical_level, eps=p.level_eps)
            for r in sorted(resolutions)})
        self.extra_losses = extra_losses
        self.groups: dict[str, list[str]] = {}
        for name, head in heads.items():
            self.groups.setdefault(_group_key(head), []).append(name)

    # -- features -----------------------------------------------------------------------------
    def _features(self, key: str, features: list[torch.Tensor], boxes: list[torch.Tensor]) -> torch.Tensor:
        if key.startswith("trunk:"):
            trunk = self.trunks[key[len("trunk:"):]]
            return trunk(self.poolers[str(trunk.resolution)](features, boxes))
        return self.poolers[key[len("pool:"):]](features, boxes)

    # -- training -----------------------------------------------------------------------------
    def forward_train(self, features: list[torch.Tensor], proposals: list[torch.Tensor],
                      targets: list[ImageTargets]) -> dict[str, torch.Tensor]:
        s = self.cfg.sampler
        with torch.no_grad():
            sampled = sample_rois(
                [p.detach() for p in proposals], [t.gt_boxes for t in targets],
                [t.gt_labels for t in targets], [t.gt_crowd for t in targets],
                batch_size_per_image=s.batch_size_per_image, positive_fraction=s.positive_fraction,
                fg_iou_threshold=s.fg_iou_threshold, bg_iou_threshold=s.bg_iou_threshold,
                append_gt=s.append_gt)
        losses: dict[str, torch.Tensor] = {}
        for key, names in self.groups.items():
            wanted = {n: self._training_roi_mask(self.heads[n], sampled, targets) for n in names}
            union = [torch.stack([wanted[n][i] for n in names]).any(0) for i in range(len(sampled))]
            union_rois = [_select(r, m) for r, m in zip(sampled, union)]
            x = self._features(key, features, [r.boxes for r in union_rois])
            for name in names:
                head = self.heads[name]
                # rows of `x` this head wants, in the order of the union
                rows = torch.cat([wanted[name][i][union[i]] for i in range(len(sampled))])
                head_rois = [_select(r, wanted[name][i]) for i, r in enumerate(sampled)]
                outputs = head(x[rows])
                losses.update(head.loss(outputs, head_rois, targets))
                if self.extra_losses is not None:
                    for extra in self.extra_losses(head_name=name, outputs=outputs, rois=head_rois,
                                                   targets=targets):
                        losses.update(extra or {})
        return losses

    def _training_roi_mask(self, head: Head, sampled: list[SampledRoIs],
                           targets: list[ImageTargets]) -> list[torch.Tensor]:
        if head.train_rois == "all":
            return [torch.ones_like(rois.labels, dtype=torch.bool) for rois in sampled]
        codec = head.target_codec() if head.train_rois == "foreground_with_targets" else None
        masks = []
        for rois, target in zip(sampled, targets):
            fg = rois.labels > 0
            if codec is not None:
                valid = codec.valid(target.heads[head.name]).to(fg.device)
                fg = fg & valid[rois.matched_gt.clamp(min=0)] if valid.numel() else torch.zeros_like(fg)
            masks.append(fg)
        return masks

    # -- inference ----------------------------------------------------------------------------
    def forward_infer(self, features: list[torch.Tensor], proposals: list[torch.Tensor],
                      image_sizes: list[tuple[int, int]]) -> list[dict[str, torch.Tensor]]:
        roi_names = [n for n, h in self.heads.items() if h.stage == "roi"]
        outputs = self._run(roi_names, features, proposals)
        candidates: dict[str, torch.Tensor] = {}
        for name in roi_names:
            candidates.update(self.heads[name].candidates(outputs[name], proposals, image_sizes))
        detections = self._select(candidates, proposals)
        for name in roi_names:
            self.heads[name].postprocess(outputs[name], detections)
        instance_names = [n for n, h in self.heads.items() if h.stage == "instance"]
        if instance_names:
            boxes = [d["pred_boxes"] for d in detections]
            outputs = self._run(instance_names, features, boxes)
            for name in instance_names:
                self.heads[name].postprocess(outputs[name], detections)
        return detections

    def _run(self, names: list[str], features: list[torch.Tensor],
             boxes: list[torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
        outputs: dict[str, dict[str, torch.Tensor]] = {}
        for key, members in self.groups.items():
            members = [n for n in members if n in names]
            if not members:
                continue
            x = self._features(key, features, boxes)
            for name in members:
                outputs[name] = self.heads[name](x)
        return outputs

    def _select(self, candidates: dict[str, torch.Tensor],
                proposals: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        counts = [len(p) for p in proposals]
        scores = candidates["scores"].split(counts)
        if "boxes" in candidates:
            boxes = candidates["boxes"].split(counts)
        else:  # no box head: every class keeps the proposal box
            boxes = [p[:, None, :].expand(-1, s.shape[1], 4) for p, s in zip(proposals, scores)]
        detections, offset = [], 0
        for s, b, n in zip(scores, boxes, counts):
            det = select_detections(s, b, self.cfg.detection)
            det["roi_index"] = det["roi_index"] + offset  # index into the concatenated RoIs
            detections.append(det)
            offset += n
        return detections


def _select(rois: SampledRoIs, mask: torch.Tensor) -> SampledRoIs:
    return SampledRoIs(boxes=rois.boxes[mask], labels=rois.labels[mask], matched_gt=rois.matched_gt[mask])


def split_outputs(outputs: dict[str, torch.Tensor], counts: list[int]) -> list[dict[str, Any]]:
    """Per-image views of a head's outputs over concatenated RoIs."""
    per_key = {k: v.split(counts) for k, v in outputs.items()}
    return [{k: per_key[k][i] for k in per_key} for i in range(len(counts))]
