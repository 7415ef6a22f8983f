"""Latency per stage (preprocess, backbone, RPN, heads, postprocess) and end to end, on one backend."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from plugrcnn_deploy.cli.common import (add_model_arguments, add_runtime_arguments, add_size_arguments, bounded_int,
                                        detections, load_model, runtime_options, side, size_of)
from plugrcnn_deploy.formats.files import atomic_output
from plugrcnn_deploy.runtimes import BACKENDS, load_runtime
from plugrcnn_deploy.video.bench import BENCH_STAGES, benchmark


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--backend", choices=tuple(BACKENDS), default="torch")
    parser.add_argument("--model", type=Path, default=None, help="the exported model (not for torch)")
    add_size_arguments(parser, required=True)
    parser.add_argument("--frame-height", type=side, default=None, help="size of the test frames "
                        "(default: the model input; another size is letterboxed)")
    parser.add_argument("--frame-width", type=side, default=None)
    parser.add_argument("--max-detections", type=detections, default=None)
    parser.add_argument("--fp16", action="store_true", help="torch backend on CUDA: half precision")
    parser.add_argument("--iterations", type=bounded_int(1, 1_000_000), default=20)
    parser.add_argument("--warmup", type=bounded_int(0, 1_000_000), default=3)
    add_runtime_arguments(parser)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")


def run(args: argparse.Namespace) -> int:
    cfg, built, device = load_model(args)
    size = size_of(args)
    runtime = load_runtime(args.backend, built.model, model_path=args.model, device=device, size=size,
                           max_detections=args.max_detections, fp16=args.fp16,
                           **runtime_options(args))
    frame = (args.frame_height or size[0], args.frame_width or size[1])
    try:
        timer = benchmark(runtime, frame, iterations=args.iterations, warmup=args.warmup)
    finally:
        runtime.close()
    spec = runtime.spec
    print(f"{args.backend} on {device}: input {spec.height}x{spec.width} (frames {frame[0]}x{frame[1]}), "
          f"K={spec.max_detections}, {args.iterations} iterations after {args.warmup} warm-up")
    for line in timer.table(BENCH_STAGES):
        print(line)
    p50 = timer.percentiles("end-to-end")[0]
    print(f"end to end: {1000.0 / p50:.1f} frames per second at p50")
    if args.json is not None:
        figures = {"backend": args.backend, "device": str(device), "input": [spec.height, spec.width],
                   "frames": list(frame), "max_detections": spec.max_detections, "fp16": bool(args.fp16),
                   "iterations": args.iterations, "fps_p50": float(f"{1000.0 / p50:.4g}"), "stages": timer.to_dict()}
        with atomic_output(args.json) as tmp:
            tmp.write_text(json.dumps(figures, indent=2) + "\n")
    return 0
