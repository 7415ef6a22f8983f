"""What `plugrcnn.load` was given -> a local config and weights file.

One function for the API, routed through the model zoo (`plugrcnn.zoo.resolve`), as the CLI's
``--weights`` is: a config is a YAML path or a zoo name (``tv:maskrcnn_resnet50_fpn``, which
brings its weights); weights are a local path, an https:// URL or a zoo name.
"""
from __future__ import annotations

from pathlib import Path

from plugrcnn.errors import PlugrcnnError
from plugrcnn.zoo.resolve import resolve_weights


def is_zoo_name(reference: str | Path) -> bool:
    """"tv:...", "d2:..." (not a path, not a Windows drive letter, not a URL)."""
    if not isinstance(reference, str) or reference.startswith(("https://", "http://")):
        return False
    prefix = reference.split(":", 1)[0]
    return ":" in reference and len(prefix) > 1 and not Path(reference).exists()


def resolve(config: str | Path, weights: str | Path | None) -> tuple[Path, Path | None]:
    """(config file, weights file or None). A zoo name as `config` brings its weights unless
    `weights` names others; every returned path exists."""
    zoo_weights = None
    if is_zoo_name(config):
        resolved = resolve_weights(str(config))
        config_path, zoo_weights = resolved.config, resolved.path
    else:
        config_path = Path(config)
    if config_path is None or not Path(config_path).is_file():
        raise PlugrcnnError(f"{config_path}: no such config file")
    weights_path = resolve_weights(str(weights)).path if weights is not None else zoo_weights
    if weights_path is not None and not Path(weights_path).is_file():
        raise PlugrcnnError(f"{weights_path}: no such weights file")
    return Path(config_path), None if weights_path is None else Path(weights_path)
