"""The records a head plugin yields from `plugrcnn_register_heads`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from plugrcnn.heads.base import Head, HeadContext


@dataclass(frozen=True)
class RoIInput:
    """What a head's `forward` consumes.

    Either RoIAlign features at `resolution` x `resolution` (heads with equal resolution share one
    RoIAlign call per step), or the output of a shared `trunk` of the core (``"box_fc"``: the
    2-fc box representation that the class and box heads both read).
    """
    resolution: int = 14
    trunk: str | None = None


@dataclass(frozen=True)
class HeadSpec:
    """One head: its name, config schema, what it needs, and how to build its module.

    name:         the key under ``model.heads`` that enables it; losses are ``loss_<name>[_term]``.
    config_class: a dataclass; the head's config is checked against it (unknown keys are errors).
    build:        ``build(head_config, context) -> Head`` (an ``nn.Module``).
    requires:     heads that must be enabled too; they run before this one.
    """
    name: str
    config_class: type
    build: Callable[[Any, HeadContext], Head]
    requires: tuple[str, ...] = ()
    description: str = ""
