from __future__ import annotations

import torch

from plugrcnn.modeling.sampler import sample_rois, subsample_labels


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_subsample_caps_positives_and_fills_with_negatives() -> None:
    labels = torch.tensor([1] * 100 + [0] * 1000 + [-1] * 50)
    pos, neg = subsample_labels(labels, 256, 0.25, bg_label=0, generator=_gen())
    assert pos.numel() == 64 and neg.numel() == 192
    assert (labels[pos] == 1).all() and (labels[neg] == 0).all()
    assert pos.unique().numel() == 64


def test_subsample_with_few_positives_and_few_negatives() -> None:
    labels = torch.tensor([3] * 10 + [0] * 20 + [-1] * 500)
    pos, neg = subsample_labels(labels, 256, 0.25, bg_label=0, generator=_gen())
    assert sorted(pos.tolist()) == list(range(10))
    assert sorted(neg.tolist()) == list(range(10, 30))


def test_subsample_with_custom_background_label() -> None:
    labels = torch.tensor([5, 5, 0, 0, -1])  # 5 is the background label (detectron2 style)
    pos, neg = subsample_labels(labels, 4, 0.5, bg_label=5, generator=_gen())
    assert sorted(pos.tolist()) == [2, 3] and sorted(neg.tolist()) == [0, 1]


def _many_proposals_around(box: list[float], count: int, jitter: float, g: torch.Generator) -> torch.Tensor:
    return torch.tensor(box) + (torch.rand(count, 4, generator=g) - 0.5) * jitter


def test_sample_rois_counts_and_fg_fraction() -> None:
    g = _gen(1)
    gt = torch.tensor([[100.0, 100.0, 200.0, 200.0]])
    near = _many_proposals_around([100.0, 100.0, 200.0, 200.0], 400, 20.0, g)  # IoU well above 0.5
    far = _many_proposals_around([400.0, 400.0, 500.0, 500.0], 800, 20.0, g)  # IoU 0
    sampled = sample_rois([torch.cat([near, far])], [gt], [torch.tensor([7])], [torch.tensor([False])], generator=g)[0]
    assert sampled.boxes.shape == (512, 4)
    assert (sampled.labels == 7).sum() == 128  # 25% of 512
    assert (sampled.labels == 0).sum() == 384
    assert ((sampled.labels == 7) == (sampled.matched_gt == 0)).all()
    assert (sampled.matched_gt[sampled.labels == 0] == -1).all()


def test_sample_rois_returns_fewer_when_not_enough_and_appends_gt() -> None:
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0], [50.0, 50.0, 90.0, 70.0]])
    proposals = torch.tensor([[0.0, 0.0, 10.0, 11.0], [0.0, 0.0, 4.0, 4.0], [20.0, 20.0, 30.0, 30.0]])
    sampled = sample_rois([proposals], [gt], [torch.tensor([1, 2])], [torch.tensor([False, False])], generator=_gen())[0]
    assert sampled.boxes.shape == (5, 4)  # 3 proposals + 2 appended GT
    fg = sampled.labels > 0
    assert sorted(sampled.labels[fg].tolist()) == [1, 1, 2]
    assert any(torch.equal(b, gt[1]) for b in sampled.boxes)
    assert sampled.labels[:3].gt(0).all() and sampled.labels[3:].eq(0).all()  # fg first


def test_sample_rois_without_appending_gt() -> None:
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    proposals = torch.tensor([[20.0, 20.0, 30.0, 30.0]])
    sampled = sample_rois(
        [proposals], [gt], [torch.tensor([1])], [torch.tensor([False])], append_gt=False, generator=_gen()
    )[0]
    assert sampled.labels.tolist() == [0] and sampled.matched_gt.tolist() == [-1]


def test_ignore_band_between_bg_and_fg_thresholds() -> None:
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    proposals = torch.tensor([[0.0, 0.0, 10.0, 4.0]])  # IoU 0.4
    sampled = sample_rois(
        [proposals], [gt], [torch.tensor([1])], [torch.tensor([False])],
        bg_iou_threshold=0.3, append_gt=False, generator=_gen(),
    )[0]
    assert sampled.boxes.shape == (0, 4)


def test_crowd_boxes_are_never_foreground_and_ignore_their_overlaps() -> None:
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0], [100.0, 100.0, 200.0, 200.0]])
    crowd = torch.tensor([False, True])
    proposals = torch.tensor(
        [
            [100.0, 100.0, 200.0, 190.0],  # IoU 0.9 with the crowd box: ignored
            [100.0, 100.0, 150.0, 150.0],  # IoU 0.25 with the crowd box: background
            [0.0, 0.0, 10.0, 9.0],  # foreground for GT 0
        ]
    )
    sampled = sample_rois([proposals], [gt], [torch.tensor([1, 2])], [crowd], generator=_gen())[0]
    assert sampled.boxes.shape == (3, 4)  # proposal 0 ignored, crowd box not appended
    assert sorted(sampled.labels.tolist()) == [0, 1, 1]
    assert set(sampled.matched_gt.tolist()) == {0, -1}
    assert not any(torch.equal(b, gt[1]) for b in sampled.boxes)


def test_images_without_gt_are_all_background() -> None:
    proposals = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 20.0, 20.0]])
    empty = torch.zeros(0, 4)
    sampled = sample_rois(
        [proposals], [empty], [torch.zeros(0, dtype=torch.int64)], [torch.zeros(0, dtype=torch.bool)], generator=_gen()
    )[0]
    assert sampled.labels.tolist() == [0, 0] and sampled.matched_gt.tolist() == [-1, -1]
    assert sampled.labels.dtype == torch.int64 and sampled.matched_gt.dtype == torch.int64
