"""Latency per stage: collect milliseconds, report p50 / p95 / p99 and frames per second."""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


class StageTimer:
    """Per-stage lists of milliseconds, in the order stages are first seen.

    `sync_device`: a CUDA device to synchronise before reading the clock, so a stage's time
    includes its GPU work (costs some overlap; the end-to-end rate is measured separately).
    `events=True` (with a CUDA device): no synchronisation at all; a stage records a CUDA event
    pair on the current stream and its time (GPU time from the start to the end of the stage's
    work on that stream) is read when the figures are asked for.
    """

    def __init__(self, sync_device: torch.device | None = None, events: bool = False) -> None:
        self._samples: dict[str, list[float]] = {}
        self.sync_device = sync_device if sync_device is not None and sync_device.type == "cuda" else None
        self.events = events and self.sync_device is not None
        self._pending: list[tuple[str, torch.cuda.Event, torch.cuda.Event]] = []

    @property
    def samples(self) -> dict[str, list[float]]:
        self._resolve()
        return self._samples

    def _resolve(self) -> None:
        pending, self._pending = self._pending, []
        for name, start, end in pending:
            end.synchronize()
            self._samples.setdefault(name, []).append(float(start.elapsed_time(end)))

    def add(self, stage: str, ms: float) -> None:
        self._samples.setdefault(stage, []).append(ms)

    def sync(self) -> None:
        if self.sync_device is not None:
            torch.cuda.synchronize(self.sync_device)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.events:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            yield
            end.record()
            self._pending.append((name, start, end))
            return
        self.sync()
        start = time.perf_counter()
        yield
        self.sync()
        self.add(name, (time.perf_counter() - start) * 1000.0)

    def percentiles(self, stage: str) -> tuple[float, float, float]:
        values = np.asarray(self.samples[stage])
        p50, p95, p99 = np.percentile(values, [50, 95, 99])
        return float(p50), float(p95), float(p99)

    def to_dict(self) -> dict[str, dict[str, float]]:
        """stage -> {"p50_ms", "p95_ms", "p99_ms", "n"} (for --json reports)."""
        figures = {}
        for stage, values in self.samples.items():
            p50, p95, p99 = self.percentiles(stage)
            figures[stage] = {"p50_ms": round(p50, 3), "p95_ms": round(p95, 3), "p99_ms": round(p99, 3),
                              "n": len(values)}
        return figures

    def table(self, stages: list[str] | None = None) -> list[str]:
        stages = stages or list(self.samples)
        width = max([len(s) for s in stages] + [5])
        lines = [f"{'stage':<{width}}  {'p50 ms':>9}  {'p95 ms':>9}  {'p99 ms':>9}  {'n':>5}"]
        for stage in stages:
            if stage not in self.samples:
                lines.append(f"{stage:<{width}}  {'n/a':>9}  {'n/a':>9}  {'n/a':>9}  {0:>5}")
                continue
            p50, p95, p99 = self.percentiles(stage)
            lines.append(f"{stage:<{width}}  {p50:9.2f}  {p95:9.2f}  {p99:9.2f}  {len(self.samples[stage]):>5}")
        return lines
