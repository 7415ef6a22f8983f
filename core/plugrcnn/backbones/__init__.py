"""plugrcnn's public API for backbone authors (see README, "Writing a backbone plugin").

- `Backbone`: subclass it; set ``self.pyramid`` and return one feature map per level;
- `Pyramid`: the levels' names, strides and channels, and which levels the RPN and RoIAlign read;
- `BackboneSpec`: yield it from the ``plugrcnn_register_backbones`` hook (`hookimpl`);
- `BackboneContext`: what ``build`` receives besides the backbone's own options;
- `FPN`, `fpn_pyramid`: a feature pyramid network to put on top of any multi-stage network;
- `ranged`, `PlugrcnnError`: typed options with ranges, and one-line errors.

A distribution provides a backbone through the entry-point group ``plugrcnn.backbones`` (the
entry point's name is the backbone's name); ``model.backbone.name`` selects one.
"""
from __future__ import annotations

from plugrcnn.backbones.spec import Backbone, BackboneContext, BackboneSpec, Pyramid
from plugrcnn.config.ranges import ranged
from plugrcnn.errors import PlugrcnnError
from plugrcnn.plugins.hookspecs import hookimpl

__all__ = ["Backbone", "BackboneContext", "BackboneSpec", "FPN", "PlugrcnnError", "Pyramid",
           "fpn_pyramid", "hookimpl", "ranged"]


def __getattr__(name: str) -> object:
    # FPN lives with the ResNet backbone, which imports torchvision: loaded when first asked for
    if name in ("FPN", "fpn_pyramid"):
        from plugrcnn.modeling import backbone

        return getattr(backbone, name)
    raise AttributeError(name)
