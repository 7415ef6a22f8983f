"""plugrcnn against torchvision, side by side in one process: inference stage by stage and end to
end, peak memory, parity of the detections, and a training step.

    python benchmarks/vs_torchvision.py [--model mask|keypoint] [--mode exact|fast]
        [--repeats 5] [--threads N] [--size 800x1066] [--train-size 800] [--no-train] [--json out.json]

torchvision's model gets seeded random weights whose detections are not empty (the parity tests'
fixture); plugrcnn's is converted from it with `plugrcnn convert torchvision`'s converter and the
torchvision config. The two run interleaved (the order alternating each repetition), so a
machine shared with other work slows both alike: the ratios are what to read, not the seconds.
Ratio = torchvision's median time / plugrcnn's (above 1: plugrcnn is faster).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_models import (STAGES, build_pair, plugrcnn_end_to_end, plugrcnn_stages,  # noqa: E402
                          synthetic_image, torchvision_end_to_end, torchvision_stages)
from parity_figures import LIMITS, compare  # noqa: E402

from plugrcnn.inference.runtime import configure_threads, cpu_supports_bf16, physical_cores  # noqa: E402


class PeakRSS:
    """Peak resident memory (MiB) above the level at entry, sampled every 2 ms from /proc."""

    def __enter__(self) -> PeakRSS:
        self.base = self.peak = _rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _rss_mib())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mib())

    @property
    def extra(self) -> float:
        return self.peak - self.base


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def run_inference(args: argparse.Namespace) -> dict[str, Any]:
    height, width = args.size
    tv, ours, runtime = build_pair(args.model, height, width, args.mode, fold=args.fold)
    image = synthetic_image(height, width, seed=1)
    sides: dict[str, dict[str, Callable[[], Any]]] = {
        "torchvision": {"stages": lambda: torchvision_stages(tv, image),
                        "e2e": lambda: torchvision_end_to_end(tv, image)},
        "plugrcnn": {"stages": lambda: plugrcnn_stages(ours, runtime, image),
                     "e2e": lambda: plugrcnn_end_to_end(ours, runtime, image)},
    }
    for side in sides.values():  # warm-up: first-call allocations, oneDNN primitive caches
        side["e2e"]()
    stage_times = {name: {s: [] for s in STAGES} for name in sides}
    e2e: dict[str, list[float]] = {name: [] for name in sides}
    peak: dict[str, float] = {name: 0.0 for name in sides}
    outputs: dict[str, Any] = {}
    for rep in range(args.repeats):
        order = list(sides) if rep % 2 == 0 else list(sides)[::-1]
        for name in order:
            _, timings = sides[name]["stages"]()
            for stage, seconds in timings.items():
                stage_times[name][stage].append(seconds)
        for name in order:
            with PeakRSS() as rss:
                start = time.perf_counter()
                outputs[name] = sides[name]["e2e"]()
                e2e[name].append(time.perf_counter() - start)
            peak[name] = max(peak[name], rss.extra)
    result: dict[str, Any] = {"stages": {}, "end_to_end": {}, "peak_rss_mib": peak}
    for stage in STAGES:
        tv_s, our_s = (_median(stage_times[n][stage]) for n in ("torchvision", "plugrcnn"))
        result["stages"][stage] = {"torchvision": tv_s, "plugrcnn": our_s, "ratio": tv_s / our_s}
    tv_e, our_e = _median(e2e["torchvision"]), _median(e2e["plugrcnn"])
    result["end_to_end"] = {"torchvision": tv_e, "plugrcnn": our_e, "ratio": tv_e / our_e,
                            "runs_torchvision": e2e["torchvision"], "runs_plugrcnn": e2e["plugrcnn"]}
    result["parity"] = compare(outputs["torchvision"], outputs["plugrcnn"])
    return result


def run_training(args: argparse.Namespace) -> dict[str, Any]:
    from train_step import TrainPair

    pair = TrainPair(args.model, args.train_size, amp=args.train_amp)
    steps = {"torchvision": pair.torchvision_step, "plugrcnn": pair.plugrcnn_step}
    for step in steps.values():  # warm-up
        step(0)
    times: dict[str, list[float]] = {name: [] for name in steps}
    losses: dict[str, list[float]] = {name: [] for name in steps}
    for rep in range(args.repeats):
        for name in (list(steps) if rep % 2 == 0 else list(steps)[::-1]):
            seconds, loss = steps[name](rep + 1)
            times[name].append(seconds)
            losses[name].append(loss)
    tv_t, our_t = _median(times["torchvision"]), _median(times["plugrcnn"])
    return {"images": 2, "size": args.train_size, "amp": args.train_amp, "torchvision": tv_t, "plugrcnn": our_t,
            "ratio": tv_t / our_t, "runs_torchvision": times["torchvision"],
            "runs_plugrcnn": times["plugrcnn"], "losses_torchvision": losses["torchvision"],
            "losses_plugrcnn": losses["plugrcnn"]}


def _size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size: expected HEIGHTxWIDTH such as 800x1066, got {text!r}")
    if min(height, width) < 64:
        raise argparse.ArgumentTypeError(f"--size: {text} is too small (64 px at least)")
    return height, width


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("mask", "keypoint"), default="mask")
    parser.add_argument("--mode", choices=("exact", "fast"), default="exact")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="default: the physical cores")
    parser.add_argument("--size", type=_size, default=(800, 1066), help="HEIGHTxWIDTH of the image")
    parser.add_argument("--train-size", type=int, default=800, help="side of the 2 training images")
    parser.add_argument("--no-train", action="store_true", help="skip the training step")
    parser.add_argument("--train-only", action="store_true", help="skip inference; time the training step")
    parser.add_argument("--train-amp", action="store_true",
                        help="both training steps under bfloat16 autocast (solver.amp on a CPU)")
    parser.add_argument("--fold", action=argparse.BooleanOptionalAction, default=None,
                        help="fold batch norms into convs, channels_last (default: in fast mode)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.train_only and args.no_train:
        parser.error("--train-only and --no-train leave nothing to measure")
    if args.train_amp and not cpu_supports_bf16():
        parser.error("--train-amp: this CPU has no bf16 instructions (solver.amp trains in float32 here)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    threads = configure_threads(args.threads or physical_cores())
    report: dict[str, Any] = {
        "machine": {"cpu": cpu_name(), "threads": threads, "torch": torch.__version__},
        "model": args.model, "mode": args.mode, "fold": args.fold, "repeats": args.repeats,
        "size": list(args.size),
        "limits": LIMITS}
    if not args.train_only:
        report["inference"] = run_inference(args)
    if not args.no_train:
        report["training"] = run_training(args)
    print(format_report(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


def format_report(report: dict[str, Any]) -> str:
    lines = [f"{report['machine']['cpu']}, {report['machine']['threads']} threads, torch "
             f"{report['machine']['torch']}; {report['model']} R-CNN R50-FPN, "
             f"{report['size'][0]}x{report['size'][1]}, plugrcnn {report['mode']} mode, "
             f"median of {report['repeats']}"]
    if "inference" in report:
        lines += _format_inference(report["inference"])
    if "training" in report:
        t = report["training"]
        precision = "bfloat16 autocast" if t["amp"] else "float32"
        lines.append(f"training step (2 images {t['size']}x{t['size']}, forward+backward+SGD, both "
                     f"{precision}): torchvision {t['torchvision']:.3f}s, plugrcnn {t['plugrcnn']:.3f}s, "
                     f"ratio {t['ratio']:.2f}x")
    return "\n".join(lines)


def _format_inference(inf: dict[str, Any]) -> list[str]:
    lines = [f"{'stage':<14}{'torchvision':>12}{'plugrcnn':>10}{'ratio':>8}"]
    for stage, row in inf["stages"].items():
        lines.append(f"{stage:<14}{row['torchvision']:>11.3f}s{row['plugrcnn']:>9.3f}s{row['ratio']:>7.2f}x")
    e = inf["end_to_end"]
    lines.append(f"{'end to end':<14}{e['torchvision']:>11.3f}s{e['plugrcnn']:>9.3f}s{e['ratio']:>7.2f}x")
    rss = inf["peak_rss_mib"]
    lines.append(f"{'peak RSS +':<14}{rss['torchvision']:>9.0f}MiB{rss['plugrcnn']:>7.0f}MiB")
    p = inf["parity"]
    lines.append(f"parity: {p['matched']} of {p['count_torchvision']} matched "
                 f"(plugrcnn {p['count_plugrcnn']}), same order {p['same_order']}, max box diff "
                 f"{p['max_box_diff_px']:.2e} px, max score diff {p['max_score_diff']:.2e}"
                 + (f", min mask IoU {p['min_mask_iou']:.4f}" if "min_mask_iou" in p else "")
                 + (f", max keypoint diff {p['max_keypoint_diff_px']:.2e} px"
                    if "max_keypoint_diff_px" in p else ""))
    lines.append(f"identical: {p['identical']}; within the export-parity limits "
                 f"(box {LIMITS['box_px']} px, mask IoU {LIMITS['mask_iou']}, keypoints "
                 f"{LIMITS['keypoint_px']} px): {p['within_limits']}")
    return lines


if __name__ == "__main__":
    sys.exit(main())
