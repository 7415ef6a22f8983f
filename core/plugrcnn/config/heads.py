"""Head sections of a config (`model.heads.<name>`), typed by their plugins at load time.

`load_config` calls `structure_head_configs` before anything reads data: the plugins the config
names are loaded (`plugrcnn.plugins.manager.load_heads`) and each section becomes an instance of
its head's `HeadSpec.config_class`, so a misspelled key under a head is reported with its file
before a data set file is opened.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plugrcnn.errors import PlugrcnnError

if TYPE_CHECKING:
    from plugrcnn.config.schema import Config
    from plugrcnn.plugins.manager import HeadRegistry

Provenance = dict[str, str]


def structure_head_configs(heads: Any, prov: Provenance, source: str, registry: HeadRegistry | None = None) -> Any:
    """`{name: raw mapping}` -> `{name: config_class instance}`; anything that is not a mapping
    of mappings is returned as is, for the schema to report. `registry`: the head plugins, if
    they are registered in code; default: load the named ones from their entry points."""
    if not isinstance(heads, dict) or not heads:
        return heads
    from plugrcnn.config.loader import structure
    from plugrcnn.plugins.manager import load_heads

    registry = registry or load_heads(list(heads))
    typed = {}
    for name, raw in heads.items():
        raw = {} if raw is None else raw
        check_no_head_loss_weight(name, raw, prov, source)
        typed[name] = structure(registry.spec(name).config_class, raw, prov, f"model.heads.{name}", source)
    return typed


def check_no_head_loss_weight(name: str, raw: Any, prov: Provenance, source: str) -> None:
    """The first head contract put loss weights under each head; they now live in one place."""
    if isinstance(raw, dict) and "loss_weight" in raw:
        key = f"model.heads.{name}.loss_weight"
        raise PlugrcnnError(f"{prov.get(key, source)}: key {key}: loss weights are set in one place, "
                            f"model.loss_weights (e.g. model.loss_weights.loss_{name}: 2.0)")


def head_configs(cfg: Config, registry: HeadRegistry) -> dict[str, Any]:
    """Every enabled head's config as its plugin's dataclass. `load_config` has typed them
    already; a Config built in code may still hold plain mappings, checked here the same way."""
    from plugrcnn.config.loader import structure

    configs = {}
    for name, raw in cfg.model.heads.items():
        raw = {} if raw is None else raw
        check_no_head_loss_weight(name, raw, cfg.provenance, cfg.source or "config")
        configs[name] = structure(registry.spec(name).config_class, raw, cfg.provenance,
                                  f"model.heads.{name}", cfg.source or "config")
    return configs
