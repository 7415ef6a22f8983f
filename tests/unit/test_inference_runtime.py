"""The inference runtime: batch norm folded into the conv before it only while predicting, only
where the conv's output feeds nothing else, and refreshed when the weights change."""
from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from plugrcnn.inference.runtime import InferenceRuntime, fold_batch_norms, physical_cores


def _norm(channels: int, gen: torch.Generator) -> FrozenBatchNorm2d:
    norm = FrozenBatchNorm2d(channels)
    norm.weight.copy_(torch.rand(channels, generator=gen) + 0.5)
    norm.bias.copy_(torch.randn(channels, generator=gen))
    norm.running_mean.copy_(torch.randn(channels, generator=gen))
    norm.running_var.copy_(torch.rand(channels, generator=gen) + 0.5)
    return norm


class Plain(nn.Module):
    """conv -> norm -> relu -> conv (with bias) -> norm."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, padding=1, bias=False), _norm(8, gen)
        self.conv2, self.bn2 = nn.Conv2d(8, 4, 1), _norm(4, gen)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))]


class SharedOutput(Plain):
    """conv1's output is read by bn1 and added to the result: folding bn1 would change it."""

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        y = self.conv1(x)
        return [self.bn2(self.conv2(torch.relu(self.bn1(y)) + y))]


class Detector(nn.Module):
    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone


def test_folding_gives_the_same_features_and_leaves_the_model_untouched_outside_applied() -> None:
    model = Detector(Plain()).eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(1, 3, 20, 24)
    with torch.no_grad():
        reference = model.backbone(x)[0]
    runtime = InferenceRuntime(model, "exact", torch.device("cpu"), fold=True)
    assert len(runtime.folds) == 2
    seen = []  # bn1's input and output while applied: an identity
    handle = model.backbone.bn1.register_forward_hook(lambda m, args, out: seen.append((args[0], out)))
    with runtime.applied():
        folded = model.backbone(x)[0]
    handle.remove()
    assert seen[0][0] is seen[0][1]
    torch.testing.assert_close(folded, reference, rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # ...and only inside applied(): outside, the original modules
        assert torch.equal(model.backbone(x)[0], reference)
    assert model.state_dict().keys() == state.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())


def test_a_conv_whose_output_is_read_elsewhere_is_not_folded() -> None:
    assert fold_batch_norms(SharedOutput().eval(), torch.device("cpu")) == []


def test_folds_follow_weight_changes_between_calls() -> None:
    model = Detector(Plain()).eval()
    runtime = InferenceRuntime(model, "exact", torch.device("cpu"), fold=True)
    x = torch.rand(1, 3, 16, 16)
    with runtime.applied():
        runtime_before = model.backbone(x)[0]
    with torch.no_grad():
        model.backbone.bn2.running_mean.add_(1.0)  # as training or load_state_dict would
        expected = model.backbone(x)[0]
    with runtime.applied():
        after = model.backbone(x)[0]
    assert not torch.allclose(after, runtime_before)
    torch.testing.assert_close(after, expected, rtol=1e-5, atol=1e-5)


def test_exact_mode_does_not_fold_by_default() -> None:
    assert InferenceRuntime(Detector(Plain()).eval(), "exact", torch.device("cpu")).folds == []


def test_physical_cores_is_at_least_one_and_at_most_the_allowed_cpus() -> None:
    import os
    assert 1 <= physical_cores() <= len(os.sched_getaffinity(0))
