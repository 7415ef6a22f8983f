"""Arguments and model loading shared by `plugrcnn export`, `video` and `bench`."""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from plugrcnn.config import load_config
from plugrcnn.config.schema import Config
from plugrcnn.errors import PlugrcnnError
from plugrcnn.modeling.build import BuiltModel, build_model, resolve_device
from plugrcnn.modeling.weights import load_model_weights
from plugrcnn.zoo.resolve import resolve_weights_and_config


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None,
                        help="the model's config (default: the one a zoo name pairs with)")
    parser.add_argument("--weights", required=True,
                        help="plugrcnn weights: a file, an https:// URL or a zoo name (`plugrcnn zoo`)")
    parser.add_argument("--device", default=None, help="cpu | cuda | cuda:N (default: model.device)")
    parser.add_argument("opts", nargs="*", help="config overrides key.sub=value")


def add_size_arguments(parser: argparse.ArgumentParser, required: bool = False) -> None:
    parser.add_argument("--height", type=int, required=required, help="input height of the model")
    parser.add_argument("--width", type=int, required=required, help="input width of the model")


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


def load_model(args: argparse.Namespace) -> tuple[Config, BuiltModel, torch.device]:
    """Config (+ overrides), model with its weights, on the device asked for, in eval mode."""
    weights, config = resolve_weights_and_config(args.weights, args.config)
    cfg = load_config(config, args.opts)
    device = resolve_device(args.device or cfg.model.device)
    built = build_model(cfg)
    load_model_weights(built.model, weights)
    built.model.to(device).eval()
    return cfg, built, device
