"""Arguments and model loading shared by `plugrcnn export`, `video` and `bench`.

Argument bounds (checked when the command line is parsed, so a bad value is one line before any
model loads): sizes in 1..MAX_SIDE pixels, counts >= 1, K and candidates below TensorRT's TopK
limit. Then, once the model is built, `check_model_input` refuses an input smaller than the
backbone's coarsest stride (that level would have no cell; the graph pads any size up to a
multiple of `size_divisibility`, so other sizes need not be multiples of the stride).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from plugrcnn.config import load_config
from plugrcnn.config.schema import MAX_SIDE, Config
from plugrcnn.errors import PlugrcnnError
from plugrcnn.modeling.build import BuiltModel, build_model, resolve_device
from plugrcnn.modeling.weights import load_model_weights
from plugrcnn.zoo.resolve import resolve_weights_and_config
from plugrcnn_deploy.formats.spec import TOPK_LIMIT


def bounded_int(low: int, high: int | None = None):  # type: ignore[no-untyped-def]
    """An argparse `type` for an integer in [low, high] (high None: no upper bound)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            where = f"in {low}..{high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"must be {where}, got {value}")
        return value
    parse.__name__ = "integer"
    return parse


def unit_interval(text: str) -> float:
    """An argparse `type` for a score threshold in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value <= 1.0:  # false for nan too
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


side = bounded_int(1, MAX_SIDE)                  # an image or frame side, pixels
detections = bounded_int(1, TOPK_LIMIT - 1)      # K, and the candidates of the final NMS


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None,
                        help="the model's config (default: the one a zoo name pairs with)")
    parser.add_argument("--weights", required=True,
                        help="plugrcnn weights: a file, an https:// URL or a zoo name (`plugrcnn zoo`)")
    parser.add_argument("--device", default=None, help="cpu | cuda | cuda:N (default: model.device)")
    parser.add_argument("opts", nargs="*", help="config overrides key.sub=value")


def add_size_arguments(parser: argparse.ArgumentParser, required: bool = False) -> None:
    parser.add_argument("--height", type=side, required=required,
                        help=f"input height of the model (pixels, at most {MAX_SIDE})")
    parser.add_argument("--width", type=side, required=required,
                        help=f"input width of the model (pixels, at most {MAX_SIDE})")


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    """Backend options of `bench` and `video` (each backend takes only its own)."""
    parser.add_argument("--ort-provider", choices=("auto", "tensorrt", "cuda", "cpu"), default="auto",
                        help="onnxruntime on CUDA: execution provider (auto: TensorRT if present, else CUDA)")
    parser.add_argument("--ort-threads", type=int, default=0,
                        help="onnxruntime: intra-op threads (0: one per physical core)")
    parser.add_argument("--ort-spin", action="store_true",
                        help="onnxruntime: let idle threads spin-wait (off: measured faster on shared cores)")
    parser.add_argument("--cuda-graph", action="store_true", help="tensorrt: replay the engine from a CUDA graph")


def runtime_options(args: argparse.Namespace) -> dict[str, object]:
    if args.backend == "onnxruntime":
        return {"ort_provider": args.ort_provider, "ort_threads": args.ort_threads, "ort_spin": args.ort_spin}
    if args.backend == "tensorrt":
        return {"cuda_graph": args.cuda_graph}
    return {}


def size_of(args: argparse.Namespace) -> tuple[int, int] | None:
    if (args.height is None) != (args.width is None):
        raise PlugrcnnError("give both --height and --width, or neither")
    return None if args.height is None else (args.height, args.width)


def default_size(cfg: Config) -> tuple[int, int]:
    """The test-time input of the config: short side min_size_test, long side max_size_test padded."""
    div = max(cfg.model.input.size_divisibility, 1)
    return cfg.model.input.min_size_test, -(-cfg.model.input.max_size_test // div) * div


def check_model_input(model: torch.nn.Module, size: tuple[int, int] | None, what: str = "--height/--width") -> None:
    """The input must cover one cell of the backbone's coarsest feature level."""
    if size is None:
        return
    coarsest = max(getattr(model.backbone, "strides", None) or [32])
    if min(size) < coarsest:
        raise PlugrcnnError(f"{what} {size[0]}x{size[1]}: each side must be at least {coarsest} pixels, "
                            f"the backbone's coarsest stride")


def load_model(args: argparse.Namespace) -> tuple[Config, BuiltModel, torch.device]:
    """Config (+ overrides), model with its weights, on the device asked for, in eval mode."""
    weights, config = resolve_weights_and_config(args.weights, args.config)
    cfg = load_config(config, args.opts)
    device = resolve_device(args.device or cfg.model.device)
    built = build_model(cfg)
    check_model_input(built.model, size_of(args) if hasattr(args, "height") else None)
    load_model_weights(built.model, weights)
    built.model.to(device).eval()
    return cfg, built, device
