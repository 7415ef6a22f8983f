"""What a backbone plugin provides: a `BackboneSpec` record, and a `Backbone` module that declares
its feature pyramid (`Pyramid`): level names, strides, channels, and which levels the RPN and the
RoI poolers read. The core reads the declaration; it assumes no number of levels or strides.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from torch import Tensor, nn

from plugrcnn.errors import PlugrcnnError

if TYPE_CHECKING:
    from plugrcnn.config.schema import FPNConfig, InputConfig


@dataclass(frozen=True)
class Pyramid:
    """The feature levels a backbone returns, finest first.

    names:   one per level, e.g. ("p2", "p3", "p4", "p5", "p6")
    strides: image pixels per feature cell of each level, powers of two, increasing
    channels: every level's channels (the RPN head and the RoI heads share one width)
    rpn_levels: the levels the RPN reads (anchors: one `model.anchors.sizes` entry each); () = all
    pooler_levels: the levels RoIAlign pools from, consecutive strides (each twice the previous);
        () = all
    """
    names: tuple[str, ...]
    strides: tuple[int, ...]
    channels: int
    rpn_levels: tuple[str, ...] = ()
    pooler_levels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "strides", tuple(int(s) for s in self.strides))
        object.__setattr__(self, "rpn_levels", tuple(self.rpn_levels) or self.names)
        object.__setattr__(self, "pooler_levels", tuple(self.pooler_levels) or self.names)
        problem = self._problem()
        if problem:
            raise PlugrcnnError(f"backbone pyramid {self.names}: {problem}")

    def _problem(self) -> str | None:
        if not self.names or len(self.names) != len(self.strides) or len(set(self.names)) != len(self.names):
            return f"needs one unique name per stride (strides {self.strides})"
        if any(s < 1 or s & (s - 1) for s in self.strides) or list(self.strides) != sorted(set(self.strides)):
            return f"strides {self.strides} must be increasing powers of two"
        if self.channels < 1:
            return f"channels must be positive, got {self.channels}"
        unknown = [n for n in (*self.rpn_levels, *self.pooler_levels) if n not in self.names]
        if unknown:
            return f"rpn_levels / pooler_levels name unknown level {unknown[0]!r}"
        pooled = [self.strides[i] for i in self.pooler_index]
        if any(b != 2 * a for a, b in zip(pooled, pooled[1:])):
            return f"pooler_levels {self.pooler_levels} must be consecutive levels (strides {pooled})"
        return None

    @property
    def rpn_index(self) -> tuple[int, ...]:
        return tuple(self.names.index(n) for n in self.rpn_levels)

    @property
    def pooler_index(self) -> tuple[int, ...]:
        return tuple(self.names.index(n) for n in self.pooler_levels)

    @property
    def rpn_strides(self) -> list[int]:
        return [self.strides[i] for i in self.rpn_index]

    @property
    def pooler_scales(self) -> list[float]:
        """feature size / image size of each pooled level, e.g. [1/4, 1/8, 1/16, 1/32]."""
        return [1.0 / self.strides[i] for i in self.pooler_index]

    def rpn_features(self, features: list[Tensor]) -> list[Tensor]:
        return [features[i] for i in self.rpn_index]

    def pooler_features(self, features: list[Tensor]) -> list[Tensor]:
        return [features[i] for i in self.pooler_index]


class Backbone(nn.Module):
    """images (N, 3, H, W), normalised -> one (N, pyramid.channels, H/s, W/s) map per level.

    Subclasses set ``self.pyramid`` in ``__init__`` and return the levels in its order.
    """
    pyramid: Pyramid

    @property
    def strides(self) -> list[int]:
        return list(self.pyramid.strides)

    @property
    def out_channels(self) -> int:
        return self.pyramid.channels

    def forward(self, x: Tensor) -> list[Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class BackboneContext:
    """What a backbone's `build` receives besides its own options."""
    fpn: FPNConfig        # model.fpn: for backbones that end in a feature pyramid network
    input: InputConfig    # model.input: pixel statistics and sizes, read only


@dataclass(frozen=True)
class BackboneSpec:
    """One backbone, yielded from ``plugrcnn_register_backbones``.

    name: what ``model.backbone.name`` says to select it (unique across installed plugins).
    config_class: a dataclass of its options: the other keys under ``model.backbone``, checked
        when the config loads (unknown keys and wrong types are errors; ``ranged`` fields too).
    build: (options, BackboneContext) -> a `Backbone` with its `pyramid` set.
    description: one line for ``plugrcnn backbones``.
    """
    name: str
    config_class: type
    build: Callable[[Any, BackboneContext], Backbone]
    description: str = ""
