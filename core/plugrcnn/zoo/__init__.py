"""The model zoo: published COCO checkpoints by short name, downloaded once, verified, converted
once and cached (`PLUGRCNN_HOME`, default ~/.cache/plugrcnn)."""
from __future__ import annotations

from plugrcnn.zoo.catalog import ZooEntry, zoo_entries
from plugrcnn.zoo.resolve import ResolvedWeights, resolve_weights

__all__ = ["ResolvedWeights", "ZooEntry", "resolve_weights", "zoo_entries"]
