"""TensorBoard event files beside metrics.jsonl: every published number as a scalar.

    tensorboard --logdir OUTPUT_DIR

Tags are the metrics.jsonl keys (`loss_mask`, `lr`, `bbox/AP`, ...), characters TensorBoard does
not accept in a tag replaced by `_`. Needs the `tensorboard` package (`pip install tensorboard`,
in plugrcnn's `tensorboard` and `test` extras); without it the run goes on and says so once.
"""
from __future__ import annotations

import logging
import math
import re
from typing import Any

from plugrcnn.engine.distributed import is_main_process
from plugrcnn.engine.hooks import HookBase

logger = logging.getLogger("plugrcnn.engine.trainer")

_NOT_IN_TAG = re.compile(r"[^A-Za-z0-9_./-]+")


def tensorboard_tag(name: str) -> str:
    """`"segm (det. score)/AP"` -> `"segm_det._score_/AP"`: TensorBoard's tag characters only."""
    return _NOT_IN_TAG.sub("_", name)


class TensorBoardHook(HookBase):
    """Writes `events.out.tfevents.*` into the output directory (rank 0)."""

    def __init__(self) -> None:
        self.writer: Any = None

    def before_train(self) -> None:
        if not is_main_process():
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # torch raises this when the tensorboard package is missing
            logger.warning("TensorBoard: the tensorboard package is not installed; no event files "
                           "(pip install tensorboard); metrics.jsonl is written as always")
            return
        # purge_step: a resumed run replaces the events a killed run wrote after its checkpoint
        self.writer = SummaryWriter(log_dir=str(self.trainer.output_dir),
                                    purge_step=self.trainer.iteration or None)

    def on_metrics(self, entry: dict[str, Any]) -> None:
        if self.writer is None:
            return
        step = int(entry["iteration"])
        for name, value in entry.items():
            if name != "iteration" and isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(tensorboard_tag(name), float(value), global_step=step)
        self.writer.flush()

    def after_train(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
