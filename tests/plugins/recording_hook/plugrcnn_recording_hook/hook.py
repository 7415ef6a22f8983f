"""`RecordCallsHook`: writes every call the trainer makes on it to `<output_dir>/<path>` (rank 0)."""
from __future__ import annotations

import json
from typing import Any

from plugrcnn.engine.distributed import is_main_process
from plugrcnn.engine.hooks import HookBase


class RecordCallsHook(HookBase):
    """Records ["before_train", 0], ["after_step", 1], ..., ["on_metrics", 2, [keys]], ...

    `every`: record before_step / after_step only at iterations divisible by it.
    """

    def __init__(self, path: str = "hook_calls.json", every: int = 1) -> None:
        self.path = path
        self.every = every
        self.calls: list[list[Any]] = []

    def _record(self, *call: Any) -> None:
        self.calls.append(list(call))

    def before_train(self) -> None:
        self._record("before_train", self.trainer.iteration)

    def before_step(self) -> None:
        if (self.trainer.iteration + 1) % self.every == 0:
            self._record("before_step", self.trainer.iteration)

    def after_step(self) -> None:
        if self.trainer.iteration % self.every == 0:
            self._record("after_step", self.trainer.iteration)

    def on_metrics(self, entry: dict[str, Any]) -> None:
        self._record("on_metrics", entry["iteration"], sorted(k for k in entry if k != "iteration"))

    def after_train(self) -> None:
        self._record("after_train", self.trainer.iteration, self.trainer.finished)
        if is_main_process():
            (self.trainer.output_dir / self.path).write_text(json.dumps(self.calls))
