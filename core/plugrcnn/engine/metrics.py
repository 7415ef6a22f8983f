"""Training metrics as JSON lines (`metrics.jsonl`) and the loss-curve plot made from them.

One line per logging window: {"iteration": 40, "loss_rpn_cls": 0.31, ..., "total_loss": 1.9,
"lr": 0.02, "time": 0.41, "data_time": 0.01}. A run that was killed and resumed appends to the
same file, so iterations between the last checkpoint and the kill appear twice; readers keep the
latest value of each key per iteration (the one from the run that went on). An evaluation during
training adds a line of its own ({"iteration": 40, "bbox/AP": 0.31, ...}); readers merge the lines
of one iteration.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import IO, Any

from plugrcnn.engine.checkpoint import atomic_write


class MetricsWriter:
    """Appends one JSON object per line, flushed at once (a kill loses at most the line in flight)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _drop_partial_last_line(self.path)
        self._file: IO[str] = self.path.open("a", encoding="utf-8")

    def write(self, entry: dict[str, Any]) -> None:
        self._file.write(json.dumps(entry) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _drop_partial_last_line(path: Path) -> None:
    """Cut a line a killed process left half-written, so the next line starts on its own."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    with path.open("r+b") as file:
        file.truncate(data.rfind(b"\n") + 1)
        file.flush()
        os.fsync(file.fileno())


def read_metrics(metrics_jsonl: str | Path) -> list[dict[str, Any]]:
    """One entry per iteration (its lines merged, later values win), sorted; bad lines skipped."""
    latest: dict[int, dict[str, Any]] = {}
    for line in Path(metrics_jsonl).read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("iteration"), int):
            latest.setdefault(entry["iteration"], {}).update(entry)
    return [latest[iteration] for iteration in sorted(latest)]


def loss_series(entries: list[dict[str, Any]]) -> dict[str, tuple[list[int], list[float]]]:
    """name -> (iterations, values) for every `loss_*` term and `total_loss`, finite values only."""
    names = sorted({k for e in entries for k in e if k.startswith("loss_")})
    if any("total_loss" in e for e in entries):
        names.append("total_loss")
    series: dict[str, tuple[list[int], list[float]]] = {}
    for name in names:
        points = [(e["iteration"], float(e[name])) for e in entries
                  if isinstance(e.get(name), (int, float)) and math.isfinite(e[name])]
        series[name] = ([p[0] for p in points], [p[1] for p in points])
    return series


def plot_loss_curves(metrics_jsonl: str | Path, out_png: str | Path) -> dict[str, tuple[list[int], list[float]]]:
    """Draw every loss term (and the lr below) from `metrics_jsonl` into `out_png`; returns the data."""
    # The Agg canvas directly, not pyplot: no display needed and no global backend switched;
    # imported here because matplotlib adds ~0.6 s to every process that imports the trainer.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    entries = read_metrics(metrics_jsonl)
    series = loss_series(entries)
    figure = Figure(figsize=(9, 6.5), layout="constrained")
    losses_axes, lr_axes = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    for name, (iterations, values) in series.items():
        is_total = name == "total_loss"
        losses_axes.plot(iterations, values, label=name, linewidth=2.2 if is_total else 1.2,
                         color="black" if is_total else None)
    losses_axes.set_ylabel("loss (window mean)")
    losses_axes.grid(alpha=0.3)
    if series:
        losses_axes.legend(fontsize="small", ncols=2)
    lr_points = [(e["iteration"], e["lr"]) for e in entries if isinstance(e.get("lr"), (int, float))]
    lr_axes.plot([p[0] for p in lr_points], [p[1] for p in lr_points], color="tab:gray")
    lr_axes.set_ylabel("lr")
    lr_axes.set_xlabel("iteration")
    lr_axes.grid(alpha=0.3)
    FigureCanvasAgg(figure)
    atomic_write(Path(out_png), lambda file: figure.savefig(file, format="png", dpi=110))
    return series
