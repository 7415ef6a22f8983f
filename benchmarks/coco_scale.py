"""COCO-scale data: load time and peak memory against pycocotools, and DataLoader workers' memory.

    python benchmarks/coco_scale.py [--images N --annotations M] [--runs R] [--dir DIR]

1. Writes (once, seeded, reused after) a synthetic instances file with COCO train2017's counts
   (`coco_scale_data.py`) and an empty (0-byte) file per image: `CocoDataset.from_files` checks
   that every image exists, and nothing here decodes pixels.
2. Times `CocoDataset.from_files(..., training=True)` and `pycocotools.coco.COCO(path)`, each in
   a fresh subprocess (clean peaks), interleaved and alternating which goes first, `--runs`
   times; prints each time, the median ratio, and each process's peak RSS (and its RSS before
   loading: plugrcnn's process has torch imported).
3. Loads the data set, then iterates it once with 4 forked DataLoader workers calling
   `CocoDataset.describe(i)`: everything `__getitem__` does but decode the image (the same
   annotation unpickling and completion). Each worker's private memory (Private_Clean +
   Private_Dirty of /proc/<pid>/smaps_rollup) is read when it starts and after the pass; the
   summed growth is reported against the data set's size (`CocoDataset.nbytes`).

The last line printed is one JSON object with every figure (`--json-out` also writes it).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from coco_scale_data import (  # noqa: E402
    COCO_TRAIN2017_ANNOTATIONS,
    COCO_TRAIN2017_IMAGES,
    write_coco_scale_file,
)

LOADERS = ("plugrcnn", "pycocotools")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes


def private_bytes(pid: int | str = "self") -> int:
    """USS of a process: its Private_Clean + Private_Dirty pages (smaps_rollup)."""
    total = 0
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1]) * 1024
    return total


def measure_load(loader: str, instances: Path, image_dir: Path) -> dict[str, Any]:
    """Load once in this process; seconds, peak RSS and RSS before loading."""
    if loader == "plugrcnn":
        from plugrcnn.data.coco import CocoDataset
        load = lambda: CocoDataset.from_files(instances, image_dir, training=True)  # noqa: E731
    else:
        from pycocotools.coco import COCO
        load = lambda: COCO(str(instances))  # noqa: E731
    before = _rss_bytes()
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        loaded = load()
    seconds = time.perf_counter() - start
    count = len(loaded) if loader == "plugrcnn" else len(loaded.imgs)
    return {"loader": loader, "seconds": seconds, "peak_rss": _peak_rss_bytes(),
            "rss_before_load": before, "images": count}


def _time_in_subprocess(loader: str, instances: Path, image_dir: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "--measure-load", loader, "--instances", str(instances),
               "--image-dir", str(image_dir)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{loader} load failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare_loads(instances: Path, image_dir: Path, runs: int) -> dict[str, Any]:
    results: dict[str, list[dict[str, Any]]] = {loader: [] for loader in LOADERS}
    for run in range(runs):
        for loader in (LOADERS if run % 2 == 0 else LOADERS[::-1]):
            result = _time_in_subprocess(loader, instances, image_dir)
            results[loader].append(result)
            print(f"run {run + 1} {loader:11s} {result['seconds']:7.2f} s  peak RSS "
                  f"{result['peak_rss'] / 2**30:.2f} GiB (before load "
                  f"{result['rss_before_load'] / 2**30:.2f} GiB)", flush=True)
    ratios = [ours["seconds"] / theirs["seconds"]
              for ours, theirs in zip(results["plugrcnn"], results["pycocotools"])]
    summary = {loader: {"seconds": [r["seconds"] for r in rs],
                        "median_seconds": statistics.median(r["seconds"] for r in rs),
                        "peak_rss": [r["peak_rss"] for r in rs],
                        "rss_before_load": [r["rss_before_load"] for r in rs],
                        "images": rs[0]["images"]} for loader, rs in results.items()}
    summary["time_ratios"] = ratios
    summary["median_time_ratio"] = statistics.median(ratios)
    print(f"load time plugrcnn / pycocotools: median {summary['median_time_ratio']:.3f} "
          f"(runs: {', '.join(f'{r:.3f}' for r in ratios)})", flush=True)
    return summary


class _AnnotationPass:
    """Item i: the number of annotations `describe(i)` returns (the worker unpickles and
    completes them as `__getitem__` does; only a count crosses the process boundary)."""

    def __init__(self, dataset: Any, report_dir: Path) -> None:
        self.dataset, self.report_dir = dataset, report_dir

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> int:
        return len(self.dataset.describe(index)["annotations"])

    def worker_started(self, worker_id: int) -> None:
        (self.report_dir / f"{os.getpid()}.json").write_text(json.dumps(
            {"worker": worker_id, "private_at_start": private_bytes()}))


def measure_workers(instances: Path, image_dir: Path, workers: int,
                    report_dir: Path) -> dict[str, Any]:
    from torch.utils.data import DataLoader

    from plugrcnn.data.coco import CocoDataset

    dataset = CocoDataset.from_files(instances, image_dir, training=True)
    annotation_pass = _AnnotationPass(dataset, report_dir)
    batch_size = max(1, min(64, len(dataset) // (4 * workers)))  # every worker gets batches
    loader = DataLoader(annotation_pass, batch_size=batch_size, num_workers=workers,
                        collate_fn=sum, multiprocessing_context="fork",
                        persistent_workers=True, worker_init_fn=annotation_pass.worker_started)
    start = time.perf_counter()
    touched = sum(loader)  # one pass: every image's annotations once, split over the workers
    seconds = time.perf_counter() - start
    deadline = time.monotonic() + 60
    while len(list(report_dir.glob("*.json"))) < workers and time.monotonic() < deadline:
        time.sleep(0.1)  # a worker given no batch may start after the pass has ended
    reports = [json.loads(path.read_text()) | {"pid": int(path.stem)}
               for path in sorted(report_dir.glob("*.json"))]
    growth = [private_bytes(r["pid"]) - r["private_at_start"] for r in reports]
    del loader  # ends the persistent workers
    return {"workers": len(reports), "annotations_touched": touched,
            "pass_seconds": seconds, "dataset_nbytes": dataset.nbytes,
            "parent_rss": _rss_bytes(), "private_growth_per_worker": growth,
            "private_growth_total": sum(growth),
            "growth_fraction_of_dataset": sum(growth) / dataset.nbytes}


def _prepare(args: argparse.Namespace) -> tuple[Path, Path]:
    folder = args.dir / f"coco_scale_{args.images}i_{args.annotations}a_seed{args.seed}"
    instances, image_dir = folder / "instances.json", folder / "images"
    if not instances.exists():
        start = time.perf_counter()
        partial = folder / "instances.json.partial"
        counts = write_coco_scale_file(partial, seed=args.seed, images=args.images,
                                       annotations=args.annotations, image_dir=image_dir)
        partial.replace(instances)
        print(f"wrote {instances} ({instances.stat().st_size / 2**20:.0f} MiB, {counts}) in "
              f"{time.perf_counter() - start:.0f} s", flush=True)
    return instances, image_dir


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=COCO_TRAIN2017_IMAGES)
    parser.add_argument("--annotations", type=int, default=COCO_TRAIN2017_ANNOTATIONS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=int, default=3, help="interleaved load pairs")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/plugrcnn_coco_scale"),
                        help="where the synthetic file is written once and reused")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--measure-load", choices=LOADERS, help=argparse.SUPPRESS)
    parser.add_argument("--instances", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--image-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure_load:  # the subprocess of one timed load
        result = measure_load(args.measure_load, args.instances, args.image_dir)
        print(json.dumps(result))
        return result
    instances, image_dir = _prepare(args)
    summary: dict[str, Any] = {"images": args.images, "annotations": args.annotations,
                               "file_bytes": instances.stat().st_size}
    summary["load"] = compare_loads(instances, image_dir, args.runs)
    report_dir = instances.parent / f"worker_reports_{os.getpid()}"
    report_dir.mkdir()
    try:
        summary["workers"] = measure_workers(instances, image_dir, args.workers, report_dir)
    finally:
        for path in report_dir.glob("*.json"):
            path.unlink()
        report_dir.rmdir()
    w = summary["workers"]
    print(f"{w['workers']} workers, one pass over {w['annotations_touched']} annotations in "
          f"{w['pass_seconds']:.1f} s: private memory grew {w['private_growth_total'] / 2**20:.1f}"
          f" MiB in all = {100 * w['growth_fraction_of_dataset']:.2f}% of the data set's "
          f"{w['dataset_nbytes'] / 2**20:.0f} MiB", flush=True)
    if args.json_out:
        args.json_out.write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
