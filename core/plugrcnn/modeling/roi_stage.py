"""Runs the enabled heads on RoIs: training (sampled RoIs -> each head's outputs) and inference
(proposals -> detections -> each head's predictions).

The stage never names a head. It groups heads by what they read (their `RoIInput`: a shared
trunk, or RoIAlign at a resolution), pools once per group on the union of the rows its heads
want, and hands each head its rows, with the outputs of the heads it consumes aligned to them.
The deploy graph runs the same per-row steps (`HeadRunner`: forward grouped by RoIInput, then
`predict`) with static shapes and its own pooling.

Shape shorthand: R RoIs (all images), C channels, S pooler resolution, D detections.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from plugrcnn.config.schema import ModelConfig
from plugrcnn.errors import PlugrcnnError
from plugrcnn.heads.base import Head
from plugrcnn.heads.rows import PredictContext, RoIRows
from plugrcnn.heads.spec import RoIInput
from plugrcnn.heads.targets import ImageTargets
from plugrcnn.modeling.detection import select_detections
from plugrcnn.modeling.poolers import MultiLevelRoIAlign
from plugrcnn.modeling.sampler import SampledRoIs, sample_rois

Outputs = dict[str, Tensor]


@dataclass
class HeadRun:
    """One head's forward in a training step: its outputs on the RoIs it ran on (per image)."""
    outputs: Outputs
    rois: list[SampledRoIs]


class HeadRunner:
    """Runs heads on one set of rows: forward (pooling once per group), then predict. The eager
    RoI stage and the deploy graph both use it, each with its own pooling."""

    def __init__(self, heads: dict[str, Head], consumes: dict[str, tuple[str, ...]]) -> None:
        self.heads = heads  # dependency order
        self.consumes = consumes

    def run_on_rows(self, names: list[str], rows: RoIRows, pool: Callable[[RoIInput], Tensor],
                    done: dict[str, Outputs]) -> None:
        """Forward of each head in `names` (dependency order) on `rows`, pooling once per group.
        `done` holds the outputs on these rows of heads already run; results are added to it."""
        pooled: dict[RoIInput, Tensor] = {}
        for name in names:
            head = self.heads[name]
            if head.roi_input not in pooled:
                pooled[head.roi_input] = pool(head.roi_input)
            done[name] = head(pooled[head.roi_input], replace(rows, consumed=self.consumed(name, done)))

    def predict_on_rows(self, rows: RoIRows, outputs: dict[str, Outputs],
                        ctx: PredictContext) -> dict[str, Outputs]:
        """Every head's `predict` on the detection rows (outputs of all heads on those rows)."""
        return {name: head.predict(outputs[name], replace(rows, consumed=self.consumed(name, outputs)), ctx)
                for name, head in self.heads.items()}

    def consumed(self, name: str, outputs: dict[str, Outputs]) -> Outputs:
        """``"<head>.<key>"`` -> tensor, for what head `name` consumes, from `outputs` (same rows)."""
        found = {}
        for ref in self.consumes[name]:
            producer, key = ref.split(".", 1)
            if key not in outputs[producer]:
                raise PlugrcnnError(f"head '{name}' consumes '{ref}' but head '{producer}' outputs only "
                                    f"{sorted(outputs[producer])}; fix the HeadSpec's consumes")
            found[ref] = outputs[producer][key]
        return found


def group_features(roi_input: RoIInput, poolers: Mapping[str, MultiLevelRoIAlign],
                   trunks: Mapping[str, nn.Module], pool: Callable[[MultiLevelRoIAlign], Tensor]) -> Tensor:
    """The features every head of the group `roi_input` reads: `pool(pooler)` with the pooler
    (keyed by str(resolution)) at the group's resolution, or at its trunk's, then that trunk.
    The eager stage and the deploy graph both call it, each with its own `pool`."""
    if roi_input.trunk:
        trunk = trunks[roi_input.trunk]
        return trunk(pool(poolers[str(trunk.resolution)]))
    return pool(poolers[str(roi_input.resolution)])


class RoIStage(nn.Module):
    def __init__(self, cfg: ModelConfig, heads: dict[str, Head], trunks: dict[str, nn.Module],
                 scales: list[float], consumes: dict[str, tuple[str, ...]] | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.heads = nn.ModuleDict(heads)  # already in dependency order
        self.trunks = nn.ModuleDict(trunks)
        self.consumes = {name: tuple((consumes or {}).get(name, ())) for name in heads}
        resolutions = {h.roi_input.resolution for h in heads.values() if not h.roi_input.trunk}
        resolutions |= {t.resolution for t in trunks.values()}
        p = cfg.pooler
        self.poolers = nn.ModuleDict({
            str(r): MultiLevelRoIAlign(output_size=r, scales=scales, sampling_ratio=p.sampling_ratio,
                                       aligned=p.aligned, canonical_box_size=p.canonical_box_size,
                                       canonical_level=p.canonical_level, eps=p.level_eps)
            for r in sorted(resolutions)})
        self.groups: dict[RoIInput, list[str]] = {}
        for name, head in heads.items():
            self.groups.setdefault(head.roi_input, []).append(name)
        # read once: a codec is built from its head's config only
        self.codecs = {name: head.target_codec() for name, head in heads.items()
                       if head.train_rois == "foreground_with_targets"}

    def names(self, stage: str) -> list[str]:
        return [name for name, head in self.heads.items() if head.stage == stage]

    # -- features -----------------------------------------------------------------------------
    def pool_group(self, roi_input: RoIInput, pool: Callable[[MultiLevelRoIAlign], Tensor]) -> Tensor:
        """The features of one group: `pool(pooler)` at the group's resolution, then its trunk."""
        return group_features(roi_input, self.poolers, self.trunks, pool)

    @property
    def runner(self) -> HeadRunner:
        return HeadRunner(dict(self.heads.items()), self.consumes)

    # -- training -----------------------------------------------------------------------------
    def forward_train(self, features: list[Tensor], proposals: list[Tensor],
                      targets: list[ImageTargets]) -> dict[str, HeadRun]:
        s = self.cfg.sampler
        with torch.no_grad():
            sampled = sample_rois(
                [p.detach() for p in proposals], [t.gt_boxes for t in targets],
                [t.gt_labels for t in targets], [t.gt_crowd for t in targets],
                batch_size_per_image=s.batch_size_per_image, positive_fraction=s.positive_fraction,
                fg_iou_threshold=s.fg_iou_threshold, bg_iou_threshold=s.bg_iou_threshold,
                append_gt=s.append_gt)
        wanted: dict[str, list[Tensor]] = {}
        for name in self.heads:  # dependency order: a consumer after what it consumes
            wanted[name] = self._training_rows(name, sampled, targets, wanted)
        pooled: dict[RoIInput, tuple[list[Tensor], Tensor]] = {}
        runs: dict[str, HeadRun] = {}
        for name, head in self.heads.items():
            if head.roi_input not in pooled:
                members = self.groups[head.roi_input]
                union = [torch.stack([wanted[n][i] for n in members]).any(0) for i in range(len(sampled))]
                boxes = [r.boxes[m] for r, m in zip(sampled, union)]
                pooled[head.roi_input] = (union, self.pool_group(
                    head.roi_input, lambda pooler, b=boxes: pooler(features, b)))
            union, x = pooled[head.roi_input]
            rois = [_select(r, m) for r, m in zip(sampled, wanted[name])]
            rows = RoIRows(boxes=torch.cat([r.boxes for r in rois]),
                           classes=torch.cat([r.labels for r in rois]),
                           consumed=self._consumed_in_training(name, wanted, runs))
            runs[name] = HeadRun(head(_rows_of(x, positions_within(wanted[name], union)), rows), rois)
        return runs

    def _training_rows(self, name: str, sampled: list[SampledRoIs], targets: list[ImageTargets],
                       wanted: dict[str, list[Tensor]]) -> list[Tensor]:
        """Per image, (S,) bool: the sampled RoIs head `name` trains on."""
        head = self.heads[name]
        if head.train_rois == "all":
            return [torch.ones_like(rois.labels, dtype=torch.bool) for rois in sampled]
        if head.train_rois == "consumed":  # the rows every head it consumes ran on
            producers = [ref.split(".", 1)[0] for ref in self.consumes[name]]
            return [torch.stack([wanted[p][i] for p in producers]).all(0) for i in range(len(sampled))]
        masks = []
        codec = self.codecs.get(name)
        for rois, target in zip(sampled, targets):
            fg = rois.labels > 0
            if codec is not None:
                valid = codec.valid(target.heads[name]).to(fg.device)
                fg = fg & valid[rois.matched_gt.clamp(min=0)] if valid.numel() else torch.zeros_like(fg)
            masks.append(fg)
        return masks

    def _consumed_in_training(self, name: str, wanted: dict[str, list[Tensor]],
                              runs: dict[str, HeadRun]) -> Outputs:
        aligned = {}
        for producer in dict.fromkeys(ref.split(".", 1)[0] for ref in self.consumes[name]):
            if any(bool((w & ~p).any()) for w, p in zip(wanted[name], wanted[producer])):
                raise PlugrcnnError(
                    f"head '{name}' trains on RoIs head '{producer}' does not run on, so it cannot "
                    f"read its outputs there; give '{name}' train_rois = \"consumed\"")
            index = positions_within(wanted[name], wanted[producer])
            aligned[producer] = {k: _rows_of(v, index) for k, v in runs[producer].outputs.items()}
        return self.runner.consumed(name, aligned)

    # -- inference ----------------------------------------------------------------------------
    def forward_infer(self, features: list[Tensor], proposals: list[Tensor],
                      image_sizes: list[tuple[int, int]]) -> list[dict[str, Tensor]]:
        roi_names = self.names("roi")
        runner = self.runner
        # RoIAlign reads NCHW: channels_last features (a folded backbone) copied once, not per pool
        features = [f.contiguous() for f in features]
        on_proposals: dict[str, Outputs] = {}
        runner.run_on_rows(roi_names, RoIRows(boxes=torch.cat(proposals)), self._pooler_on(features, proposals),
                         on_proposals)
        on_proposals = {name: _at_least_fp32(outputs) for name, outputs in on_proposals.items()}
        candidates: Outputs = {}
        for name in roi_names:
            candidates.update(self.heads[name].candidates(on_proposals[name], proposals, image_sizes))
        detections = self._select(candidates, proposals)
        rows = RoIRows(boxes=torch.cat([d["pred_boxes"] for d in detections]),
                       classes=torch.cat([d["pred_classes"] for d in detections]),
                       scores=torch.cat([d["scores"] for d in detections]))
        index = torch.cat([d["roi_index"] for d in detections])
        # roi-stage heads' outputs on the detections' proposals, then instance heads on the boxes
        on_detections = {name: {k: v[index] for k, v in on_proposals[name].items()} for name in roi_names}
        runner.run_on_rows(self.names("instance"), rows,
                         self._pooler_on(features, [d["pred_boxes"] for d in detections]), on_detections)
        on_detections = {name: _at_least_fp32(outputs) for name, outputs in on_detections.items()}
        predictions = runner.predict_on_rows(rows, on_detections, PredictContext(static=False))
        counts = [len(d["pred_boxes"]) for d in detections]
        for fields in predictions.values():
            for key, value in fields.items():
                for det, part in zip(detections, value.split(counts)):
                    det[f"pred_{key}"] = part
        return detections

    def _pooler_on(self, features: list[Tensor], boxes: list[Tensor]) -> Callable[[RoIInput], Tensor]:
        return lambda roi_input: self.pool_group(roi_input, lambda pooler: pooler(features, boxes))

    def _select(self, candidates: Outputs, proposals: list[Tensor]) -> list[dict[str, Tensor]]:
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


def positions_within(subset: list[Tensor], superset: list[Tensor]) -> Tensor:
    """Per image (S,) bool masks, `subset` within `superset` -> (R',) long: where each subset row
    sits among the superset's rows (concatenated image-major)."""
    index, offset = [], 0
    for sub, sup in zip(subset, superset):
        position = torch.cumsum(sup.long(), 0) - 1 + offset  # (S,) row of each superset member
        index.append(position[sub])
        offset += int(sup.sum())
    if not index:
        return torch.zeros(0, dtype=torch.long)
    return torch.cat(index)


def _rows_of(x: Tensor, index: Tensor) -> Tensor:
    """x[index]; when `index` is every row in order (a subset as large as its superset), x itself:
    no copy of the group's features for each head that reads all of them (class and box)."""
    return x if index.numel() == x.shape[0] else x[index.to(x.device)]


def _at_least_fp32(outputs: Outputs) -> Outputs:
    """Half-precision outputs (bf16/fp16 autocast) as fp32 before decoding: box deltas applied to
    fp32 boxes, scores compared against thresholds. fp32 outputs are returned as they are."""
    return {k: v.float() if v.is_floating_point() and v.element_size() < 4 else v
            for k, v in outputs.items()}


def _select(rois: SampledRoIs, mask: Tensor) -> SampledRoIs:
    return SampledRoIs(boxes=rois.boxes[mask], labels=rois.labels[mask], matched_gt=rois.matched_gt[mask])
