"""Export the model to ONNX, a TensorRT engine or an AOTInductor package (fixed size, K detections)."""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from plugrcnn.errors import PlugrcnnError
from plugrcnn.inference.images import list_images, read_header, read_image
from plugrcnn_deploy.cli.common import (add_model_arguments, add_size_arguments, bounded_int, check_model_input,
                                        default_size, detections, load_model, size_of)
from plugrcnn_deploy.formats.onnx_export import MAX_OPSET, MIN_OPSET
from plugrcnn_deploy.export import export_model, synthetic_images, verify_export
from plugrcnn_deploy.formats.registry import EXPORT_FORMATS, ExportFormat, export_format
from plugrcnn_deploy.runtimes import load_runtime
from plugrcnn_deploy.formats.spec import DEFAULT_NMS_ROUNDS, DeploySpec


def default_engine_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "plugrcnn" / "tensorrt"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--format", required=True, choices=tuple(EXPORT_FORMATS),
                        help="; ".join(f"{f.name}: {f.description}" for f in EXPORT_FORMATS.values()))
    parser.add_argument("--output", required=True, type=Path,
                        help=" | ".join(f.suffix for f in EXPORT_FORMATS.values()))
    add_size_arguments(parser)
    parser.add_argument("--max-detections", type=detections, default=None,
                        help="K (default: detections_per_image)")
    parser.add_argument("--max-candidates", type=detections, default=3000,
                        help="class-box pairs entering the final NMS (< 3840)")
    parser.add_argument("--batch", type=bounded_int(1, 256), default=1)
    parser.add_argument("--input-dtype", choices=("uint8", "float32"), default="uint8",
                        help="uint8 RGB in [0, 255] or float32 RGB in [0, 1]")
    parser.add_argument("--fp16", action="store_true", help="half precision (TensorRT, AOTInductor on CUDA)")
    parser.add_argument("--opset", type=bounded_int(MIN_OPSET, MAX_OPSET), default=MIN_OPSET)
    parser.add_argument("--nms-rounds", type=bounded_int(1, 99), default=DEFAULT_NMS_ROUNDS,
                        help="fixed-point rounds of the static NMS (odd; see deploy/README.md)")
    parser.add_argument("--triton", type=Path, default=None, metavar="DIR",
                        help="also write a Triton model repository entry (onnx, tensorrt) into DIR")
    parser.add_argument("--engine-cache", type=Path, default=None, metavar="DIR",
                        help="TensorRT: reuse plans built for the same graph, TensorRT and GPU "
                             "(default: $XDG_CACHE_HOME/plugrcnn/tensorrt)")
    parser.add_argument("--no-engine-cache", action="store_true", help="TensorRT: always build")
    parser.add_argument("--verify", action="store_true",
                        help="compare the exported model with PyTorch; fail over the limits (the file is kept)")
    parser.add_argument("--delete-on-verify-failure", action="store_true",
                        help="with --verify: remove the exported file when it fails")
    parser.add_argument("--verify-images", type=Path, default=None,
                        help="image or folder for --verify (default: synthetic images)")


def run(args: argparse.Namespace) -> int:
    cfg, built, device = load_model(args)
    height, width = size_of(args) or default_size(cfg)
    check_model_input(built.model, (height, width), "the model input")
    spec = DeploySpec(height=height, width=width, batch=args.batch, input_dtype=args.input_dtype,
                      max_detections=(cfg.model.detection.detections_per_image if args.max_detections is None
                                      else args.max_detections),
                      max_candidates=args.max_candidates, fp16=args.fp16, nms_rounds=args.nms_rounds)
    fmt = export_format(args.format)
    if args.triton is not None and not fmt.triton:
        served = " and ".join(f.name for f in EXPORT_FORMATS.values() if f.triton)
        raise PlugrcnnError(f"--triton: Triton serves {served} models, not {args.format}")
    cache = None if args.no_engine_cache else (args.engine_cache or default_engine_cache())
    images = _verify_images(args.verify_images, cfg) if args.verify_images else None
    start = time.perf_counter()
    written = export_model(built.model, spec, args.format, args.output, config=cfg, pm=built.registry.pm,
                           opset=args.opset, engine_cache=cache)
    print(f"wrote {args.output} ({args.format}, input {written.batch}x3x{written.height}x{written.width} "
          f"{written.input_dtype}, K={written.max_detections}) in {time.perf_counter() - start:.1f} s")
    print(f"outputs: {', '.join(written.outputs)}")
    for line in fmt.load("notes")(args.output) if fmt.notes else ():
        print(line)
    if args.verify:
        _verify(args, built.model, device, images or synthetic_images((height, width)))
    if args.triton is not None:
        from plugrcnn_deploy.formats.triton import write_triton_entry

        entry = write_triton_entry(args.triton, args.output, args.format, _io_of(args.output, fmt, written))
        print(f"wrote Triton model repository entry {entry} (config.pbtxt)")
    return 0


def _io_of(path: Path, fmt: ExportFormat, spec: DeploySpec) -> dict[str, Any]:
    """Inputs and outputs (name, shape, dtype, meaning) of the written model."""
    if fmt.io_of is None:
        raise PlugrcnnError(f"--triton: format '{fmt.name}' cannot describe its inputs and outputs")
    return fmt.load("io_of")(path, spec)


def _verify_images(path: Path, cfg) -> list:  # type: ignore[no-untyped-def]
    """The images for --verify, through the one image reader (headers first, pixel limit)."""
    files = list_images(path)
    limit = cfg.model.input.max_image_pixels
    for file in files:
        read_header(file, limit)
    return [read_image(file, limit) for file in files]


def _verify(args: argparse.Namespace, model, device, images) -> None:  # type: ignore[no-untyped-def]
    runtime = load_runtime(export_format(args.format).runtime, model, model_path=args.output, device=device)
    report = verify_export(model, runtime, images, fp16=args.fp16)
    runtime.close()
    for line in report.comparison.summary():
        print(f"verify: {line}")
    if report.comparison.reference_count == 0:
        print("verify: warning: PyTorch found no detections on these images; only the empty result was compared")
    if not report.ok:
        if args.delete_on_verify_failure:
            args.output.unlink(missing_ok=True)
            kept = "the file was removed (--delete-on-verify-failure)"
        else:
            kept = (f"the file is kept at {args.output.resolve()} for inspection; "
                    f"--delete-on-verify-failure removes it")
        raise PlugrcnnError(f"{args.output}: verification failed ({'; '.join(report.problems)}); {kept}")
    print("verify: OK")
