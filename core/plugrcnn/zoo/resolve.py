"""`--weights` as a local path, an https:// URL or a zoo name -> a local plugrcnn weights file
(and, for zoo names, the config it pairs with).

Cache layout under PLUGRCNN_HOME (default ~/.cache/plugrcnn):
    downloads/<file name from the URL>         the published file, verified
    converted/<source>/<file stem>.pth         plugrcnn weights converted from it, once
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from plugrcnn.errors import PlugrcnnError
from plugrcnn.zoo.catalog import ZooEntry, hash_prefix_of, zoo_entries
from plugrcnn.zoo.download import cache_home, check_url, fetch


@dataclass(frozen=True)
class ResolvedWeights:
    path: Path
    config: Path | None  # the config a zoo entry pairs with; None for a path or URL


def resolve_weights(spec: str) -> ResolvedWeights:
    if spec.startswith(("https://", "http://")):
        name = check_url(spec)
        return ResolvedWeights(fetch(spec, cache_home() / "downloads" / name, hash_prefix_of(spec)), None)
    prefix = spec.split(":", 1)[0]
    # "tv:...", "d2:..." (not a Windows drive letter, not a file that happens to hold a colon)
    if ":" in spec and len(prefix) > 1 and not Path(spec).exists():
        entries = zoo_entries()
        if spec not in entries:
            raise PlugrcnnError(f"--weights {spec}: not in the model zoo (`plugrcnn zoo` lists "
                                f"{', '.join(sorted(entries))})")
        entry = entries[spec]
        return ResolvedWeights(converted_weights(entry), entry.config)
    return ResolvedWeights(Path(spec), None)


def converted_weights(entry: ZooEntry) -> Path:
    """The entry's plugrcnn weights: from the cache, or downloaded and converted once."""
    name = check_url(entry.url)
    if entry.source == "plugrcnn":
        return fetch(entry.url, cache_home() / "downloads" / name, entry.sha256)
    converted = cache_home() / "converted" / entry.source / f"{name.split('.', 1)[0]}.pth"
    if converted.is_file():
        return converted  # no network call, no conversion
    raw = fetch(entry.url, cache_home() / "downloads" / name, entry.sha256)
    _convert(entry, raw, converted)
    return converted


def _convert(entry: ZooEntry, raw: Path, converted: Path) -> None:
    from plugrcnn.config import load_config
    from plugrcnn.convert import detectron2, torchvision

    cfg = load_config(entry.config)
    if entry.source == "torchvision":
        torchvision.convert_file(entry.arch, raw, converted, cfg)
    else:
        detectron2.convert_file(raw, converted, entry.arch or None, cfg)


def resolve_weights_and_config(weights: str, config: Path | None) -> tuple[Path, Path]:
    """The CLI's --weights / --config pair: a zoo name brings its config, an explicit --config
    wins; a path or URL needs --config."""
    resolved = resolve_weights(weights)
    chosen = config or resolved.config
    if chosen is None:
        raise PlugrcnnError(f"--config: required with --weights {weights} (only zoo names "
                            f"bring their own config; `plugrcnn zoo` lists them)")
    return resolved.path, chosen
