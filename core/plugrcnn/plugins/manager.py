"""Load exactly the heads a config names, from the `plugrcnn.heads` entry-point group.

Every failure here happens before any compute and names the culprit: a head nobody installed
(with the pip command), two distributions that claim one head, a misspelled hook implementation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any, Iterable

import pluggy

from plugrcnn.errors import PlugrcnnError
from plugrcnn.plugins import hookspecs
from plugrcnn.heads.spec import HeadSpec

ENTRY_POINT_GROUP = "plugrcnn.heads"


@dataclass
class LoadedHead:
    spec: HeadSpec
    distribution: str
    version: str


@dataclass
class HeadRegistry:
    """The plugin manager plus the head specs it produced, by name."""
    pm: pluggy.PluginManager
    heads: dict[str, LoadedHead] = field(default_factory=dict)

    def spec(self, name: str) -> HeadSpec:
        return self.heads[name].spec


def create_plugin_manager() -> pluggy.PluginManager:
    """A fresh manager with plugrcnn's hook specs (no module-global manager)."""
    pm = pluggy.PluginManager("plugrcnn")
    pm.add_hookspecs(hookspecs)
    return pm


def installed_head_entry_points() -> dict[str, list[metadata.EntryPoint]]:
    """Head name -> the entry points (one per distribution, normally) that provide it."""
    found: dict[str, list[metadata.EntryPoint]] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, []).append(ep)
    return found


def dist_of(ep: metadata.EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "<unknown distribution>", "?"
    return dist.metadata["Name"], dist.version


def load_heads(names: Iterable[str], *, extra_plugins: Iterable[tuple[str, Any]] = ()) -> HeadRegistry:
    """Load the plugins for `names` from entry points and collect their HeadSpecs.

    `extra_plugins` (name, module-or-object) are registered as well; tests use it for plugins
    that are not installed as distributions.
    """
    names = list(names)
    pm = create_plugin_manager()
    available = installed_head_entry_points()
    origin: dict[str, tuple[str, str]] = {}  # plugin name in pm -> (distribution, version)
    for name in names:
        eps = available.get(name, [])
        if len(eps) > 1:
            dists = " and ".join(sorted(f"'{dist_of(ep)[0]}'" for ep in eps))
            raise PlugrcnnError(
                f"head '{name}' is provided by two distributions, {dists}; uninstall one of them")
        if not eps:
            continue  # maybe provided by an extra plugin; checked below
        dist, version = dist_of(eps[0])
        module = _load_entry_point(eps[0], name, dist)
        if pm.is_registered(module):
            continue
        pm.register(module, name=f"{dist}:{eps[0].value}")
        origin[f"{dist}:{eps[0].value}"] = (dist, version)
    for plugin_name, plugin in extra_plugins:
        pm.register(plugin, name=plugin_name)
        origin[plugin_name] = (plugin_name, "-")
    check_hook_names(pm, origin)
    registry = HeadRegistry(pm=pm)
    for impl in pm.hook.plugrcnn_register_heads.get_hookimpls():
        dist, version = origin.get(impl.plugin_name, (impl.plugin_name, "?"))
        for spec in impl.function() or ():
            if spec.name in registry.heads:
                other = registry.heads[spec.name].distribution
                raise PlugrcnnError(
                    f"head '{spec.name}' is registered by both '{other}' and '{dist}'; "
                    f"uninstall one of them")
            registry.heads[spec.name] = LoadedHead(spec, dist, version)
    missing = [n for n in names if n not in registry.heads]
    if missing:
        raise PlugrcnnError(_not_installed_message(missing[0], available))
    return registry


def _load_entry_point(ep: metadata.EntryPoint, name: str, dist: str) -> ModuleType:
    try:
        return ep.load()
    except Exception as exc:  # an installed but broken plugin: say which one
        raise PlugrcnnError(
            f"head '{name}' from distribution '{dist}' failed to import ({ep.value}): "
            f"{type(exc).__name__}: {exc}") from exc


def check_hook_names(pm: pluggy.PluginManager, origin: dict[str, tuple[str, str]]) -> None:
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        dist = origin.get(pm.get_name(exc.plugin) or "", ("?", "?"))[0]
        raise PlugrcnnError(f"plugin '{dist}': {exc}; check the spelling against "
                            f"plugrcnn.plugins.hookspecs") from None


def _not_installed_message(name: str, available: dict[str, list[metadata.EntryPoint]]) -> str:
    known = ", ".join(sorted(available)) or "none"
    return (f"head '{name}' is named in the config (model.heads.{name}) but no installed "
            f"distribution provides it; install it, e.g. `pip install plugrcnn-{name}` "
            f"(installed heads: {known})")


def list_installed_heads() -> list[tuple[str, str, str, str]]:
    """(head name, distribution, version, entry point) for every installed head, sorted."""
    rows = []
    for name, eps in installed_head_entry_points().items():
        for ep in eps:
            dist, version = dist_of(ep)
            rows.append((name, dist, version, ep.value))
    return sorted(rows)
