"""Where a config or weights reference points: a local path now, a zoo name (``tv:...``,
``d2:...``) once a zoo registers a resolver for its prefix.

Every string the Python API accepts for a config or weights goes through `resolve`, so the model
zoo plugs in here and nowhere else.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Literal

from plugrcnn.errors import PlugrcnnError

What = Literal["config", "weights"]
# prefix -> function(name after the prefix, what) -> a local path. Filled by the zoo.
ZOO_RESOLVERS: dict[str, Callable[[str, What], Path]] = {}

# "tv:maskrcnn_resnet50_fpn" is a zoo name; "C:\\x" (a Windows drive) and "./a:b" are paths
_ZOO_NAME = re.compile(r"^(?P<prefix>[a-z][a-z0-9]+):(?P<name>[^/\\].*)$")


def register_zoo(prefix: str, resolver: Callable[[str, What], Path]) -> None:
    """Route names ``<prefix>:<name>`` to `resolver` (called with the name and `what`)."""
    ZOO_RESOLVERS[prefix] = resolver


def resolve(reference: str | Path, what: What) -> Path:
    """A local file for `reference` (a path, or a zoo name whose prefix is registered).

    Raises PlugrcnnError naming the reference when it is neither an existing file nor a known
    zoo name."""
    if isinstance(reference, str):
        match = _ZOO_NAME.match(reference)
        if match and not Path(reference).exists():
            prefix = match["prefix"]
            if prefix not in ZOO_RESOLVERS:
                known = ", ".join(f"{p}:" for p in sorted(ZOO_RESOLVERS)) or "none installed"
                raise PlugrcnnError(f"{reference}: unknown model zoo prefix '{prefix}:' "
                                    f"(known: {known}); give a path to a {what} file instead")
            return Path(ZOO_RESOLVERS[prefix](match["name"], what))
    path = Path(reference)
    if not path.is_file():
        raise PlugrcnnError(f"{path}: no such {what} file")
    return path
