"""Load a YAML config: follow `_base_`, apply `key.sub=value` overrides, check it against the schema.

Every key remembers the file that set it (or "command line"), so an unknown key or a value of the
wrong type is reported as `<file>: key model.rpn.nms_thresh: expected float, got 'high'`.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from pathlib import Path
from typing import Any, Union

import yaml

from plugrcnn.config.ranges import field_range
from plugrcnn.errors import PlugrcnnError

Provenance = dict[str, str]  # dotted key -> where it was set
# keys that moved: the old dotted key -> where it is set now (an old config gets told, in one line)
MOVED_KEYS = {"data.num_workers": "solver.num_workers"}
_MAX_CONFIG_BYTES = 1 << 20     # configs are a few KB; a larger file is the wrong file
_MAX_CONFIG_NODES = 100_000


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PlugrcnnError(f"{path}: cannot read config ({exc.strerror})") from None
    if len(raw) > _MAX_CONFIG_BYTES:
        raise PlugrcnnError(f"{path}: {len(raw)} bytes is too large for a config file "
                            f"(limit {_MAX_CONFIG_BYTES}); is it the right file?")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PlugrcnnError(f"{path}: not a YAML text file (byte {exc.start} is not UTF-8; "
                            "a binary file such as a checkpoint?)") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PlugrcnnError(f"{path}:{where} config does not parse: {problem}") from None
    if data is None:
        return {}
    _check_graph(data, path)
    if not isinstance(data, dict):
        raise PlugrcnnError(f"{path}: a config must be a mapping at top level, got {type(data).__name__}")
    return data


def _check_graph(data: Any, path: Path) -> None:
    """YAML anchors can make a tree refer to itself, or expand exponentially (a "billion laughs"
    file); walking either would never end, so count nodes and refuse a cycle or a huge tree."""
    count, stack, on_path = 0, [(data, False)], set()
    while stack:
        node, leaving = stack.pop()
        if leaving:
            on_path.discard(id(node))
            continue
        count += 1
        if count > _MAX_CONFIG_NODES:
            raise PlugrcnnError(f"{path}: config expands to more than {_MAX_CONFIG_NODES} values "
                                "(YAML aliases?); refused")
        if isinstance(node, (dict, list)):
            if id(node) in on_path:
                raise PlugrcnnError(f"{path}: config refers to itself (a YAML alias inside its own anchor)")
            on_path.add(id(node))
            stack.append((node, True))
            children = list(node.keys()) + list(node.values()) if isinstance(node, dict) else node
            stack.extend((child, False) for child in children)


def _merge(base: dict, update: dict, prov: Provenance, source: str, prefix: str = "") -> dict:
    """Deep-merge `update` into a copy of `base`; mappings merge, everything else replaces."""
    out = dict(base)
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value, prov, source, dotted + ".")
        else:
            out[key] = value
            _record(prov, dotted, value, source)
    return out


def _record(prov: Provenance, dotted: str, value: Any, source: str) -> None:
    prov[dotted] = source
    if isinstance(value, dict):
        for key, sub in value.items():
            _record(prov, f"{dotted}.{key}", sub, source)


def _load_tree(path: Path, prov: Provenance, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in seen:
        chain = " -> ".join(str(p) for p in (*seen, path))
        raise PlugrcnnError(f"{path}: `_base_` cycle: {chain}")
    data = _read_yaml(path)
    bases = data.pop("_base_", [])
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise PlugrcnnError(f"{path}: key _base_: expected a path or a list of paths")
    merged: dict[str, Any] = {}
    for base in bases:
        base_path = (path.parent / base)
        if not base_path.exists():
            raise PlugrcnnError(f"{path}: key _base_: file {base} not found (looked at {base_path})")
        merged = _merge(merged, _load_tree(base_path, prov, (*seen, path)), prov, str(base_path.resolve()))
    return _merge(merged, data, prov, str(path))


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """`["model.rpn.nms_thresh=0.6", "model.heads.mask={}"]` -> a nested dict (values parsed as YAML)."""
    tree: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise PlugrcnnError(f"command line: override {item!r} is not key=value")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        node = tree
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise PlugrcnnError(f"command line: override {item!r} conflicts with another override")
        node[parts[-1]] = value
    return tree


def load_config(path: str | Path, overrides: list[str] | None = None, schema: type | None = None, *,
                registry: Any = None) -> Any:
    """Read `path` (+ its `_base_` chain), apply overrides, return a checked `schema` instance.

    For a `Config`, the head sections are typed by the plugins the config names (loaded from
    their entry points, or taken from `registry`, a `HeadRegistry` of plugins registered in code)
    and `data.format` is checked: everything is checked before any data set file is opened."""
    from plugrcnn.config.schema import Config

    schema = schema or Config
    path = Path(path)
    if not path.exists():
        raise PlugrcnnError(f"{path}: config file not found")
    prov: Provenance = {}
    tree = _load_tree(path, prov)
    if overrides:
        tree = _merge(tree, parse_overrides(overrides), prov, "command line")
    for reserved in ("provenance", "source"):
        if reserved in tree:
            raise PlugrcnnError(f"{prov.get(reserved, path)}: unknown key {reserved}")
    if schema is Config:
        tree = _with_typed_heads(tree, prov, str(path), registry)
    cfg = structure(schema, tree, prov, default_source=str(path))
    if hasattr(cfg, "provenance"):
        cfg.provenance = prov
        cfg.source = str(path)
    if schema is Config:  # a format nobody installed is a config error, found before any data
        from plugrcnn.data.formats import dataset_format

        dataset_format(cfg.data.format, prov.get("data.format", str(path)))
    return cfg


def _with_typed_heads(tree: dict[str, Any], prov: Provenance, source: str, registry: Any) -> dict[str, Any]:
    """`tree` with `model.heads.<name>` turned into each head's own dataclass (a copy)."""
    from plugrcnn.config.heads import structure_head_configs

    model = tree.get("model")
    if not isinstance(model, dict) or "heads" not in model:
        return tree  # nothing to type, or a shape the schema reports
    heads = structure_head_configs(model["heads"], prov, source, registry)
    return {**tree, "model": {**model, "heads": heads}}


def structure(schema: Any, value: Any, prov: Provenance | None = None, key: str = "",
              default_source: str = "config") -> Any:
    """Turn plain YAML data into `schema` (a dataclass or a typing annotation), checking types."""
    prov = prov or {}
    where = prov.get(key, default_source)
    name = key or "(top level)"
    if dataclasses.is_dataclass(schema) and isinstance(schema, type):
        if isinstance(value, schema):
            return value
        if hasattr(schema, "from_plain"):  # a section typed by what it names (model.backbone)
            return schema.from_plain(value, prov, key, default_source)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise PlugrcnnError(f"{where}: key {name}: expected a mapping, got {_show(value)}")
        hints = typing.get_type_hints(schema)
        fields = {f.name: f for f in dataclasses.fields(schema) if f.init}
        unknown = [k for k in value if k not in fields]
        if unknown:
            raise PlugrcnnError(_unknown_key_message(unknown[0], sorted(fields), prov, key, where))
        kwargs = {k: structure(hints[k], v, prov, f"{key}.{k}" if key else k, default_source)
                  for k, v in value.items()}
        _check_ranges(schema, kwargs, prov, key, where)
        try:
            return schema(**kwargs)
        except PlugrcnnError as exc:  # a cross-field check in __post_init__: add the file
            raise PlugrcnnError(f"{where}: {exc}") from None
    return _structure_value(schema, value, prov, key, where, default_source)


def _unknown_key_message(name: str, known: list[str], prov: Provenance, key: str, where: str) -> str:
    """`<file>: unknown key model.rpn.nms_treshold; did you mean nms_thresh? (known: ...)`"""
    bad = f"{key}.{name}" if key else name
    if bad in MOVED_KEYS:
        return f"{prov.get(bad, where)}: key {bad} has moved to {MOVED_KEYS[bad]}; set it there"
    close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"{prov.get(bad, where)}: unknown key {bad}{hint} (known: {', '.join(known)})"


def _check_ranges(schema: type, kwargs: dict[str, Any], prov: Provenance, key: str, where: str) -> None:
    """Every given value against the range its field declares (`plugrcnn.config.ranges`)."""
    for f in dataclasses.fields(schema):
        rng = field_range(f)
        if rng is None or f.name not in kwargs:
            continue
        problem = rng.problem(kwargs[f.name])
        if problem is not None:
            dotted = f"{key}.{f.name}" if key else f.name
            raise PlugrcnnError(f"{prov.get(dotted, where)}: key {dotted}: {problem}")


def _structure_value(tp: Any, value: Any, prov: Provenance, key: str, where: str,
                     default_source: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    fail = PlugrcnnError(f"{where}: key {key}: expected {_type_name(tp)}, got {_show(value)}")
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return structure(arg, value, prov, key, default_source)
            except PlugrcnnError:
                continue
        raise fail
    if origin is typing.Literal:
        if value in args:
            return value
        raise PlugrcnnError(f"{where}: key {key}: expected one of {list(args)}, got {_show(value)}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise fail
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise fail
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
            if not math.isfinite(number):
                raise PlugrcnnError(f"{where}: key {key}: must be a finite number, got {_show(value)}")
            return number
        raise fail
    if tp is str:
        if isinstance(value, str):
            return value
        raise fail
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise fail
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise PlugrcnnError(
                    f"{where}: key {key}: expected {len(args)} values, got {len(value)}")
            items = [structure(a, v, prov, f"{key}[{i}]", default_source)
                     for i, (a, v) in enumerate(zip(args, value))]
        else:
            item_tp = args[0] if args else Any
            items = [structure(item_tp, v, prov, f"{key}[{i}]", default_source)
                     for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise fail
        key_tp, val_tp = args if args else (Any, Any)
        return {structure(key_tp, k, prov, key, default_source):
                structure(val_tp, v, prov, f"{key}.{k}", default_source) for k, v in value.items()}
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise fail


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def to_dict(cfg: Any) -> Any:
    """The inverse of `structure`: plain data, ready for YAML or JSON."""
    if hasattr(cfg, "to_plain"):
        return to_dict(cfg.to_plain())
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    return cfg
