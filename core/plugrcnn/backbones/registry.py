"""Find backbones: the built-in ones (registered in code) and those of installed distributions
(entry-point group ``plugrcnn.backbones``, one entry point per backbone name, like heads).

Every failure names the culprit before any compute: a name nobody provides (with the list of
available ones), two distributions that claim one name, a plugin that does not import.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Iterable

import pluggy
import torch

from plugrcnn.backbones.spec import Backbone, BackboneContext, BackboneSpec, Pyramid
from plugrcnn.errors import PlugrcnnError, build_by_plugin
from plugrcnn.plugins.manager import check_hook_names, dist_of, create_plugin_manager

ENTRY_POINT_GROUP = "plugrcnn.backbones"
BUILTIN_DISTRIBUTION = "plugrcnn"


@dataclass(frozen=True)
class LoadedBackbone:
    spec: BackboneSpec
    distribution: str
    version: str


def _builtin_plugin() -> tuple[Any, str]:
    from plugrcnn.backbones import builtin

    try:
        version = metadata.version(BUILTIN_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        version = "-"
    return builtin, version


def backbone_entry_points() -> dict[str, list[metadata.EntryPoint]]:
    """Backbone name -> the installed entry points that provide it (normally one)."""
    found: dict[str, list[metadata.EntryPoint]] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, []).append(ep)
    return found


def load_backbones(names: Iterable[str] | None = None, *,
                   extra_plugins: Iterable[tuple[str, Any]] = ()) -> dict[str, LoadedBackbone]:
    """The built-in backbones plus those of the installed plugins named in `names` (None: all)."""
    pm = create_plugin_manager()
    builtin, version = _builtin_plugin()
    pm.register(builtin, name="plugrcnn:builtin-backbones")
    origin = {"plugrcnn:builtin-backbones": (BUILTIN_DISTRIBUTION, version)}
    available = backbone_entry_points()
    wanted = list(available) if names is None else [n for n in names if n in available]
    for name in wanted:
        _register_entry_point(pm, name, available[name], origin)
    for plugin_name, plugin in extra_plugins:
        pm.register(plugin, name=plugin_name)
        origin[plugin_name] = (plugin_name, "-")
    check_hook_names(pm, origin)
    return _collect(pm, origin)


def _register_entry_point(pm: pluggy.PluginManager, name: str, eps: list[metadata.EntryPoint],
                          origin: dict[str, tuple[str, str]]) -> None:
    if len(eps) > 1:
        dists = " and ".join(sorted(f"'{dist_of(ep)[0]}'" for ep in eps))
        raise PlugrcnnError(f"backbone '{name}' is provided by two distributions, {dists}; "
                            f"uninstall one of them")
    dist, version = dist_of(eps[0])
    try:
        module = eps[0].load()
    except Exception as exc:  # an installed but broken plugin: say which one
        raise PlugrcnnError(f"backbone '{name}' from distribution '{dist}' failed to import "
                            f"({eps[0].value}): {type(exc).__name__}: {exc}") from exc
    if not pm.is_registered(module):
        pm.register(module, name=f"{dist}:{eps[0].value}")
        origin[f"{dist}:{eps[0].value}"] = (dist, version)


def _collect(pm: pluggy.PluginManager, origin: dict[str, tuple[str, str]]) -> dict[str, LoadedBackbone]:
    found: dict[str, LoadedBackbone] = {}
    for impl in pm.hook.plugrcnn_register_backbones.get_hookimpls():  # registration order: built-ins first
        dist, version = origin.get(impl.plugin_name, (impl.plugin_name, "?"))
        for spec in impl.function() or ():
            if not isinstance(spec, BackboneSpec):
                raise PlugrcnnError(f"plugin '{dist}': plugrcnn_register_backbones yielded "
                                    f"{type(spec).__name__}, not a plugrcnn.backbones.BackboneSpec")
            if spec.name in found:
                raise PlugrcnnError(f"backbone '{spec.name}' is registered by both "
                                    f"'{found[spec.name].distribution}' and '{dist}'; uninstall one of them")
            found[spec.name] = LoadedBackbone(spec, dist, version)
    return found


def available_backbone_names() -> list[str]:
    """Built-in names and installed entry-point names, without importing any plugin."""
    from plugrcnn.backbones import builtin

    return sorted({*(s.name for s in builtin.plugrcnn_register_backbones()), *backbone_entry_points()})


def find_backbone(name: str, where: str = "config") -> LoadedBackbone:
    """The backbone `name` (model.backbone.name), or one line listing the available ones."""
    found = load_backbones([name])
    if name not in found:
        raise PlugrcnnError(f"{where}: key model.backbone.name: no backbone '{name}' is registered "
                            f"(available: {', '.join(available_backbone_names())}; "
                            f"`plugrcnn backbones` lists them with their levels)")
    return found[name]


def build_backbone(name: str, options: Any, ctx: BackboneContext) -> Backbone:
    """Build backbone `name` and check that it declares its pyramid."""
    spec = find_backbone(name).spec
    module = build_by_plugin("backbone", name, "model.backbone", spec.build, options, ctx)
    if not isinstance(module, Backbone) or not hasattr(module, "pyramid"):
        raise PlugrcnnError(f"backbone '{name}': build() returned {type(module).__name__}, not a "
                            f"plugrcnn.backbones.Backbone with its `pyramid` set")
    return module


def probe_pyramid(name: str, options: Any, ctx: BackboneContext) -> Pyramid:
    """The pyramid backbone `name` declares with `options`, without a real build: on the meta
    device (no memory, no compute) where it builds there, else on the CPU; either way the random
    number generator is left as it was, so the weights built afterwards do not change."""
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. loading a weights file into meta tensors is a no-op
        try:
            with torch.device("meta"):
                return build_backbone(name, options, ctx).pyramid
        except Exception:  # e.g. RegNet computes its widths from tensor values: not on meta
            return build_backbone(name, options, ctx).pyramid
