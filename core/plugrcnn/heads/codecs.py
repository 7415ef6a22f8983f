"""Each head's target codec, built from its spec (`HeadSpec.target_codec`), never from a model.

The data layer calls `build_target_codecs` when it sets up a data set, before a model exists;
the model builder calls it again so that a head's `target_codec()` returns the same codec.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plugrcnn.errors import PlugrcnnError
from plugrcnn.heads.spec import DatasetInfo

if TYPE_CHECKING:
    from plugrcnn.config.schema import Config
    from plugrcnn.heads.targets import TargetCodec
    from plugrcnn.plugins.manager import HeadRegistry


def config_dataset_info(cfg: Config) -> DatasetInfo:
    """The classes a config names, for building a model without its data (inference)."""
    m = cfg.model
    return DatasetInfo(num_classes=m.num_classes, class_names=tuple(m.class_names),
                       category_ids=tuple(m.category_ids), source=cfg.source or "config")


def build_target_codecs(head_configs: dict[str, Any], registry: HeadRegistry,
                        data: DatasetInfo) -> dict[str, TargetCodec]:
    """Head name -> its codec, for every head whose spec has one (and returns one)."""
    codecs: dict[str, TargetCodec] = {}
    for name, head_cfg in head_configs.items():
        factory = registry.spec(name).target_codec
        if factory is None:
            continue
        try:
            codec = factory(head_cfg, data)
        except PlugrcnnError:
            raise
        except Exception as exc:  # a plugin's bug: one line naming the head
            raise PlugrcnnError(f"head '{name}': building its target codec failed "
                                f"({type(exc).__name__}: {exc}); check model.heads.{name}") from exc
        if codec is not None:
            codecs[name] = codec
    return codecs
