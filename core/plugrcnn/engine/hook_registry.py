"""Trainer hooks named in the config, found in the `plugrcnn.hooks` entry-point group.

    solver:
      hooks:
        - {name: record_calls, path: calls.json}     # name + the factory's keyword options

A distribution provides a hook by declaring, in its pyproject.toml,

    [project.entry-points."plugrcnn.hooks"]
    record_calls = "my_package.hooks:RecordCallsHook"

where the object is a `HookBase` subclass (or any callable returning a `HookBase`) taking the
options as keyword arguments. Names and options are checked when the solver config is read,
before any data are loaded: an unknown name or option is one line naming the key.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from typing import Any

from plugrcnn.errors import PlugrcnnError

ENTRY_POINT_GROUP = "plugrcnn.hooks"

HookFactory = Callable[..., Any]  # (**options) -> HookBase


def installed_hook_entry_points() -> dict[str, list[metadata.EntryPoint]]:
    """Hook name -> the entry points that provide it (one, unless two distributions clash)."""
    found: dict[str, list[metadata.EntryPoint]] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, []).append(ep)
    return found


def _distribution(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else "<unknown distribution>"


def load_hook_factory(name: str, key: str) -> HookFactory:
    """The factory of hook `name` (config key `key`, for messages); one-line errors."""
    available = installed_hook_entry_points()
    eps = available.get(name, [])
    if not eps:
        known = ", ".join(sorted(available)) or "none"
        raise PlugrcnnError(f"{key}: no installed trainer hook is named '{name}' (installed: {known}); "
                            f"a distribution provides one in the '{ENTRY_POINT_GROUP}' entry-point group")
    if len(eps) > 1:
        dists = " and ".join(sorted(f"'{_distribution(ep)}'" for ep in eps))
        raise PlugrcnnError(f"{key}: trainer hook '{name}' is provided by two distributions, {dists}; "
                            "uninstall one of them")
    try:
        factory = eps[0].load()
    except Exception as exc:  # an installed but broken plugin: say which one
        raise PlugrcnnError(f"{key}: trainer hook '{name}' from '{_distribution(eps[0])}' failed to "
                            f"import ({eps[0].value}): {type(exc).__name__}: {exc}") from None
    if not callable(factory):
        raise PlugrcnnError(f"{key}: trainer hook '{name}' ({eps[0].value}) is not callable")
    return factory


def _split_entry(entry: Any, key: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
        raise PlugrcnnError(f"{key}: expected a mapping with a 'name' (and the hook's options), "
                            f"got {entry!r}")
    options = {k: v for k, v in entry.items() if k != "name"}
    return entry["name"], options


def check_hook_entries(entries: Sequence[Any], key: str = "solver.hooks") -> None:
    """Every entry names an installed hook and gives options its factory accepts."""
    for index, entry in enumerate(entries):
        where = f"{key}[{index}]"
        name, options = _split_entry(entry, where)
        factory = load_hook_factory(name, where)
        try:
            inspect.signature(factory).bind(**options)
        except TypeError as exc:
            raise PlugrcnnError(f"{where} ({name}): {exc}") from None
        except ValueError:  # no signature to inspect (a builtin): the call itself will tell
            pass


def build_config_hooks(entries: Sequence[Any], key: str = "solver.hooks") -> list[Any]:
    """The hooks `entries` name, in their order; a factory that fails is one line naming it."""
    from plugrcnn.engine.hooks import HookBase

    hooks = []
    for index, entry in enumerate(entries):
        where = f"{key}[{index}]"
        name, options = _split_entry(entry, where)
        try:
            hook = load_hook_factory(name, where)(**options)
        except PlugrcnnError:
            raise
        except Exception as exc:
            raise PlugrcnnError(f"{where} ({name}): {type(exc).__name__}: {exc}") from None
        if not isinstance(hook, HookBase):
            raise PlugrcnnError(f"{where} ({name}): made a {type(hook).__name__}, not a "
                                "plugrcnn.engine.hooks.HookBase")
        hooks.append(hook)
    return hooks
