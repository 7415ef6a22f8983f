"""Run the detector on a video and write the drawn video (MP4), with FPS and latency per stage."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from plugrcnn.errors import PlugrcnnError
from plugrcnn.inference.draw_detections import DetectionDrawer
from plugrcnn_deploy.cli.common import (add_model_arguments, add_runtime_arguments, add_size_arguments,
                                        default_size, detections, load_model, runtime_options, size_of,
                                        unit_interval)
from plugrcnn_deploy.runtimes import BACKENDS, load_runtime
from plugrcnn_deploy.video.pipeline import VideoPipeline, open_video


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="a video file OpenCV can decode")
    add_model_arguments(parser)
    parser.add_argument("--backend", choices=tuple(BACKENDS), default="torch")
    parser.add_argument("--model", type=Path, default=None,
                        help="the exported model (onnxruntime: .onnx, tensorrt: engine, aoti: .pt2)")
    parser.add_argument("--output", required=True, type=Path, help="the drawn video (.mp4)")
    add_size_arguments(parser)
    parser.add_argument("--max-detections", type=detections, default=None, help="torch backend: K")
    parser.add_argument("--fp16", action="store_true", help="torch backend on CUDA: half precision")
    parser.add_argument("--min-score", type=unit_interval, default=0.5, help="draw detections scoring at least this")
    parser.add_argument("--no-progress", action="store_true")
    add_runtime_arguments(parser)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")


def run(args: argparse.Namespace) -> int:
    if args.output.suffix.lower() != ".mp4":
        raise PlugrcnnError(f"{args.output}: the output must be an .mp4 file")
    if args.backend == "torch" and args.model is not None:
        raise PlugrcnnError("--model is for exported models; the torch backend uses --weights")
    import cv2

    capture, _, _ = open_video(args.input)  # a bad video fails before the model loads
    frame_size = (int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)))
    capture.release()
    cfg, built, device = load_model(args)
    limit = cfg.model.input.max_image_pixels
    if frame_size[0] * frame_size[1] > limit:  # each frame is decoded whole: same limit as images
        raise PlugrcnnError(f"{args.input}: frames of {frame_size[1]}x{frame_size[0]} are over the limit of "
                            f"{limit / 1e6:g} MP (model.input.max_image_pixels)")
    # torch builds its graph at --height/--width, else at the config's test size (as exported models)
    runtime = load_runtime(args.backend, built.model, model_path=args.model, device=device,
                           size=size_of(args), default_size=default_size(cfg),
                           max_detections=args.max_detections, fp16=args.fp16,
                           **runtime_options(args))
    spec = runtime.spec
    print(f"{args.backend}: model input {spec.height}x{spec.width}, K={spec.max_detections}, device {device}"
          + ("" if frame_size == (spec.height, spec.width) else
             f"; frames of {frame_size[0]}x{frame_size[1]} are letterboxed"))
    pipeline = VideoPipeline(runtime, DetectionDrawer(built.model.heads, args.min_score))
    try:
        report = pipeline.process(args.input, args.output, progress=not args.no_progress)
    finally:
        runtime.close()
    print(f"wrote {args.output}")
    for line in report.summary():
        print(line)
    if args.json is not None:
        from plugrcnn_deploy.formats.files import atomic_output

        figures = {"backend": args.backend, "device": str(device), "input": [spec.height, spec.width],
                   "frames": report.frames, "seconds": round(report.seconds, 3), "fps": float(f"{report.fps:.4g}"),
                   "stages": report.timer.to_dict(), **pipeline.notes}
        with atomic_output(args.json) as tmp:
            tmp.write_text(json.dumps(figures, indent=2) + "\n")
    return 0
