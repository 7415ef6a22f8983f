"""How fast can a bit-identical exact mode be? The ceiling set by torchvision's own matrix work.

For the same detections bit for bit, plugrcnn's exact mode must run torchvision's convolution
and matrix-product kernels on the same inputs in the same layout (channels_last, batch-norm
folding or bf16 change the fp32 rounding, which reorders near-tied detections at the per-image
cut: see README, "Speed"). Everything else (RPN selection, RoIAlign, NMS, the paste, copies)
can be made cheaper. So if those kernels take K seconds of torchvision's T, exact mode can run at
most T / K times torchvision's speed, even if everything else took no time at all.

    python benchmarks/exact_ceiling.py [--model mask|keypoint] [--size 800x1066] [--repeats 3]
        [--train [--train-size 800]]

profiles torchvision's model on the benchmark's image (torch.profiler, self CPU time per op,
summed over `--repeats` predictions after a warm-up) and prints K, T and the ceiling T / K.
`--train` does the same for the benchmark's float32 training step (2 images, forward +
backward + SGD), where K also counts the convolutions' backward: the most a float32 training
step can gain while it runs the same convolutions.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from bench_models import ARCHS, synthetic_image
from tv_fixtures import make_torchvision_model

from plugrcnn.inference.runtime import configure_threads, physical_cores

# the kernels whose fp32 rounding an identical output pins (self time: the kernel, not wrappers)
MATRIX_OPS = ("aten::mkldnn_convolution", "aten::convolution_backward", "aten::_slow_conv2d_forward",
              "aten::slow_conv_transpose2d", "aten::addmm", "aten::mm", "aten::bmm")


def _sum(events: object, repeats: int, wall: float) -> dict[str, float]:
    total = sum(e.self_cpu_time_total for e in events) / 1e6 / repeats
    matrix = {e.key: e.self_cpu_time_total / 1e6 / repeats for e in events if e.key in MATRIX_OPS}
    return {"total": total, "wall": wall, "matrix": sum(matrix.values()), **matrix}


def measure_training(model: str, size: int, repeats: int) -> dict[str, float]:
    """The same figures for torchvision's float32 training step of the side-by-side benchmark."""
    from train_step import TrainPair

    pair = TrainPair(model, size)
    pair.torchvision_step(0)  # warm-up
    start = time.perf_counter()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for rep in range(repeats):
            pair.torchvision_step(rep + 1)
    return _sum(prof.key_averages(), repeats, (time.perf_counter() - start) / repeats)


def measure(model: str, height: int, width: int, repeats: int) -> dict[str, float]:
    tv = make_torchvision_model(ARCHS[model], seed=0, delta_std=1e-4)
    tv.transform.min_size, tv.transform.max_size = (min(height, width),), max(height, width)
    image = synthetic_image(height, width, seed=0).float() / 255
    with torch.inference_mode():
        tv([image])  # warm-up
        start = time.perf_counter()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            for _ in range(repeats):
                tv([image])
        wall = (time.perf_counter() - start) / repeats
    return _sum(prof.key_averages(), repeats, wall)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=tuple(ARCHS), default="mask")
    parser.add_argument("--size", default="800x1066", help="HEIGHTxWIDTH")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="default: the physical cores")
    parser.add_argument("--train", action="store_true", help="profile the float32 training step instead")
    parser.add_argument("--train-size", type=int, default=800, help="side of the 2 training images")
    args = parser.parse_args(argv)
    try:
        height, width = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        parser.error(f"--size: expected HEIGHTxWIDTH such as 800x1066, got {args.size!r}")
    if min(height, width, args.train_size) < 64 or args.repeats < 1:
        parser.error("--size and --train-size must be at least 64 and --repeats at least 1")
    threads = configure_threads(args.threads or physical_cores())
    if args.train:
        r = measure_training(args.model, args.train_size, args.repeats)
        what = f"training step (2 images {args.train_size}x{args.train_size}, float32)"
    else:
        r = measure(args.model, height, width, args.repeats)
        what = f"{height}x{width} prediction"
    print(f"torchvision {ARCHS[args.model]} {what}, {threads} threads "
          f"(profiled, mean of {args.repeats}):")
    for key in MATRIX_OPS:
        if key in r:
            print(f"  {key:<32}{r[key]:8.3f} s")
    print(f"convolutions + matrix products {r['matrix']:.3f} s of {r['total']:.3f} s op time "
          f"({100 * r['matrix'] / r['total']:.0f}%); wall {r['wall']:.3f} s")
    kind = "a float32 training step on the same convolutions" if args.train else "a bit-identical exact mode"
    print(f"ceiling of {kind}: {r['total'] / r['matrix']:.2f}x torchvision")
    return 0


if __name__ == "__main__":
    sys.exit(main())
