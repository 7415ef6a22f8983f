"""plugrcnn's RoIAlign: torchvision's forward, a sparse-product backward that gives torchvision's
feature gradient (to float rounding) for every box shape the detector can produce."""
from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.ops import roi_align as tv_roi_align

from plugrcnn.modeling.poolers import MultiLevelRoIAlign
from plugrcnn.modeling.roi_align import roi_align, roi_align_input_grad


def _grads(features: torch.Tensor, rois: torch.Tensor, size: int, scale: float, sampling: int,
           aligned: bool, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ours out, torchvision out, our feature grad, torchvision's) for one random upstream grad."""
    results = []
    for fn in (roi_align, tv_roi_align):
        f = features.clone().requires_grad_(True)
        out = fn(f, rois, size, scale, sampling, aligned)
        upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))
        out.backward(upstream)
        results.append((out.detach(), f.grad))
    (ours, g_ours), (ref, g_ref) = results
    return ours, ref, g_ours, g_ref


def _random_rois(gen: torch.Generator, n_images: int, count: int, height: int, width: int) -> torch.Tensor:
    """Boxes of every kind: inside, across the border, outside, thin, zero-size, huge."""
    image = torch.randint(0, n_images, (count, 1), generator=gen).float()
    x1 = torch.rand(count, generator=gen) * width * 1.4 - width * 0.2
    y1 = torch.rand(count, generator=gen) * height * 1.4 - height * 0.2
    bw = torch.rand(count, generator=gen) ** 3 * width * 1.2
    bh = torch.rand(count, generator=gen) ** 3 * height * 1.2
    bw[: count // 8] = 0.0                    # zero width
    bh[count // 8: count // 4] = 0.3          # thinner than a pixel
    return torch.cat([image, torch.stack([x1, y1, x1 + bw, y1 + bh], 1)], 1)


def test_backward_matches_torchvision_on_border_thin_and_outside_boxes() -> None:
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(3, 5, 23, 37, generator=gen)
    rois = _random_rois(gen, 3, 200, 23 * 4, 37 * 4)
    for aligned in (False, True):
        for sampling in (0, 1, 2, 3):
            for size in (7, 14):
                ours, ref, g_ours, g_ref = _grads(features, rois, size, 0.25, sampling, aligned, seed=size)
                assert torch.equal(ours, ref)  # the forward is torchvision's
                torch.testing.assert_close(g_ours, g_ref, rtol=1e-5, atol=1e-5,
                                           msg=f"aligned={aligned} sampling={sampling} size={size}")
                assert g_ref.abs().sum() > 0


@settings(max_examples=40, deadline=None)
@given(height=st.integers(1, 40), width=st.integers(1, 40), n_boxes=st.integers(0, 30),
       scale=st.sampled_from([1.0, 0.5, 0.25, 0.125]), sampling=st.integers(0, 4),
       aligned=st.booleans(), size=st.integers(1, 9), seed=st.integers(0, 2**31 - 1))
def test_backward_matches_torchvision_hypothesis(height: int, width: int, n_boxes: int, scale: float,
                                                 sampling: int, aligned: bool, size: int, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(2, 3, height, width, generator=gen)
    rois = _random_rois(gen, 2, n_boxes, int(height / scale), int(width / scale))
    _, _, g_ours, g_ref = _grads(features, rois, size, scale, sampling, aligned, seed)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-5, atol=1e-5)


def test_gradient_of_a_known_sample() -> None:
    """One bin, one sample at (y, x) = (1.25, 2.5): its upstream gradient splits bilinearly."""
    features = torch.zeros(1, 1, 4, 5)
    # aligned box (x 2.0..3.0, y 0.75..1.75) after the -0.5 shift -> one sample at (1.25, 2.5)
    rois = torch.tensor([[0.0, 2.5, 1.25, 3.5, 2.25]])
    grad = roi_align_input_grad(torch.ones(1, 1, 1, 1), rois, features.shape, 1.0, 1, True)
    expected = torch.zeros(1, 1, 4, 5)
    expected[0, 0, 1, 2], expected[0, 0, 1, 3] = 0.75 * 0.5, 0.75 * 0.5
    expected[0, 0, 2, 2], expected[0, 0, 2, 3] = 0.25 * 0.5, 0.25 * 0.5
    assert torch.equal(grad, expected)


def test_pooler_uses_it_only_for_cpu_fp32_features_that_need_a_gradient() -> None:
    """Inference and tracing run torchvision's op unwrapped (no autograd node of ours)."""
    pooler = MultiLevelRoIAlign(output_size=7, scales=[0.25, 0.125], sampling_ratio=0, aligned=True)
    feats = [torch.randn(1, 4, 32, 32, requires_grad=True), torch.randn(1, 4, 16, 16, requires_grad=True)]
    boxes = [torch.tensor([[4.0, 4.0, 60.0, 90.0], [10.0, 10.0, 20.0, 30.0]])]
    out = pooler(feats, boxes)
    nodes, todo = set(), [out.grad_fn]
    while todo:
        node = todo.pop()
        if node is not None and node not in nodes:
            nodes.add(node)
            todo.extend(n for n, _ in node.next_functions)
    assert any(type(n).__name__ == "_RoIAlignBackward" for n in nodes)
    with torch.no_grad():
        assert torch.equal(pooler(feats, boxes), out.detach())


def test_bf16_features_under_autocast_match_torchvision_autocast() -> None:
    """Mixed-precision training (solver.amp on a CPU): the same float32 computation as
    torchvision's autocast wrapper, gradients cast back to the features' dtype."""
    gen = torch.Generator().manual_seed(3)
    features = torch.randn(2, 4, 20, 24, generator=gen).to(torch.bfloat16)
    rois = _random_rois(gen, 2, 40, 80, 96)
    results = []
    for fn in (roi_align, tv_roi_align):
        f = features.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = fn(f, rois, 7, 0.25, 0, True)
        out.float().sum().backward()
        results.append((out.detach(), f.grad))
    (ours, g_ours), (ref, g_ref) = results
    assert ours.dtype == ref.dtype == torch.bfloat16 and torch.equal(ours, ref)
    assert g_ours.dtype == torch.bfloat16
    torch.testing.assert_close(g_ours.float(), g_ref.float(), rtol=1e-2, atol=1e-2)
