"""YAML configs with `_base_` inheritance, `key.sub=value` overrides and dataclass schemas."""
from __future__ import annotations

from plugrcnn.config.loader import load_config, parse_overrides, structure
from plugrcnn.config.schema import Config

__all__ = ["Config", "load_config", "parse_overrides", "structure"]
