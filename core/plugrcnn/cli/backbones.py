"""Registered backbones (built in and installed): name, distribution, feature levels and strides."""
from __future__ import annotations

import argparse

from plugrcnn.backbones.registry import LoadedBackbone, load_backbones, probe_pyramid
from plugrcnn.backbones.spec import BackboneContext, Pyramid
from plugrcnn.config.schema import FPNConfig, InputConfig
from plugrcnn.errors import PlugrcnnError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("levels and strides are those of the default options and model.fpn; "
                     "select one with model.backbone.name")


def default_pyramid(name: str, loaded: LoadedBackbone) -> Pyramid | None:
    """The pyramid of the backbone with its default options; None if it does not build so."""
    try:
        return probe_pyramid(name, loaded.spec.config_class(), BackboneContext(FPNConfig(), InputConfig()))
    except PlugrcnnError:  # a listing shows what it can; building it for a model reports the error
        return None


def _levels(names: tuple[str, ...]) -> str:
    return ",".join(names)


def run(args: argparse.Namespace) -> int:
    rows = []
    for name, loaded in sorted(load_backbones().items()):
        pyramid = default_pyramid(name, loaded)
        shape = (("?",) * 4 if pyramid is None else
                 (_levels(pyramid.names), ",".join(map(str, pyramid.strides)),
                  _levels(pyramid.rpn_levels), _levels(pyramid.pooler_levels)))
        rows.append((name, loaded.distribution, loaded.version, *shape, loaded.spec.description))
    header = ("backbone", "distribution", "version", "levels", "strides", "rpn", "roi pooler", "description")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
    return 0
