"""Backbone: FPN shapes and strides, frozen stages."""
from __future__ import annotations

import torch

from plugrcnn.config.schema import FPNConfig
from plugrcnn.modeling.backbone import ResNetFPN, ResNetOptions


def test_fpn_levels_have_strides_4_to_64_and_p6_rounds_up() -> None:
    net = ResNetFPN("resnet18", ResNetOptions(norm="frozen_bn"), FPNConfig(out_channels=16)).eval()
    feats = net(torch.zeros(1, 3, 160, 224))
    assert [tuple(f.shape[-2:]) for f in feats] == [(40, 56), (20, 28), (10, 14), (5, 7), (3, 4)]
    assert all(f.shape[1] == 16 for f in feats) and net.strides == [4, 8, 16, 32, 64]


def test_frozen_stages_get_no_gradient_and_keep_batchnorm_statistics() -> None:
    net = ResNetFPN("resnet18", ResNetOptions(norm="bn", freeze_at=2), FPNConfig(out_channels=16))
    net.train()
    assert not any(p.requires_grad for p in net.body.layer1.parameters())
    assert not net.body.conv1.weight.requires_grad
    assert all(p.requires_grad for p in net.body.layer2.parameters())
    before = net.body.layer1[0].bn1.running_mean.clone()
    net(torch.randn(2, 3, 64, 64))
    assert torch.equal(net.body.layer1[0].bn1.running_mean, before)      # frozen: eval mode
    assert not torch.equal(net.body.layer2[0].bn1.running_mean, torch.zeros(128))  # trained: updated
