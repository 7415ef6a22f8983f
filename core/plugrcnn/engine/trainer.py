"""The training loop: SGD steps, resume, DDP; everything around the steps is a hook (engine/hooks.py).

A step: next batch -> `model(batch)` -> `criterion` (named `loss_*` scalars, outside the model's
forward) -> `reduce_losses` (the scalar) -> finite
check (all ranks agree) -> backward (GradScaler under AMP) -> optional clipping -> optimizer and
scheduler step. Iterations are counted 1..max_iter: "iteration 40" is the 40th step, after which
`model_0000040.pth` holds the state and metrics.jsonl has the line of the window ending there.

Around each step the hooks run (`before_step` / `after_step`); checkpoints, metrics.jsonl,
TensorBoard, the progress bar and the loss plot are the default hooks, evaluation and the best model
are added by `training_hooks.hooks_from_config`, and users add theirs (`hook_registry`).

Resume is exact: the checkpoint (`hooks.CheckpointHook`) carries the optimizer, scheduler,
GradScaler, every rank's RNG states and the data stream position (see `training_sampler`), so an interrupted and resumed run
ends with the weights an uninterrupted one would have (bit for bit on CPU with the same settings).
"""
from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from plugrcnn.engine.checkpoint import (
    find_last_checkpoint,
    load_checkpoint,
    remove_stale_temp_files,
    restore_rng_state,
)
from plugrcnn.engine.distributed import (
    all_reduce_sum,
    get_local_rank,
    get_rank,
    get_world_size,
    is_main_process,
    setup_distributed,
    wrap_model_for_ddp,
)
from plugrcnn.engine.hooks import (
    CheckpointHook,
    HookBase,
    LossPlotHook,
    LossWindowHook,
    MetricsFileHook,
    ProgressHook,
)
from plugrcnn.engine.losses import weighted_sum
from plugrcnn.engine.metrics import plot_loss_curves
from plugrcnn.engine.solver import SolverConfig, build_lr_scheduler, build_optimizer
from plugrcnn.engine.tensorboard import TensorBoardHook
from plugrcnn.engine.training_sampler import build_training_loader, derive_seed
from plugrcnn.errors import PlugrcnnError
from plugrcnn.cpu_flags import cpu_supports_bf16

__all__ = ["HookBase", "StepRecord", "Trainer", "plot_loss_curves"]

logger = logging.getLogger(__name__)


def training_autocast_dtype(device: torch.device) -> torch.dtype | None:
    """solver.amp's autocast dtype on `device`: float16 on CUDA (with loss scaling), bfloat16 on a
    CPU with bf16 instructions, else None (float32)."""
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and cpu_supports_bf16():
        return torch.bfloat16
    return None


LossDict = Mapping[str, torch.Tensor]
_RESUME_KEYS = ("model", "optimizer", "scheduler", "iteration", "data", "rng")


@dataclasses.dataclass
class RunState:
    """What one `train()` call works on (`Trainer.run`, for hooks); `iteration` = completed steps,
    `data_position` = images used."""

    model: nn.Module           # unwrapped; what checkpoints store
    trained_model: nn.Module   # `model` or its DistributedDataParallel wrapper
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    device: torch.device
    amp_dtype: torch.dtype | None  # solver.amp's autocast dtype (float16 on CUDA, bfloat16 on a CPU); None: float32
    iteration: int = 0
    data_position: int = 0
    resumed_from: str | None = None  # file name of the checkpoint loaded by `resume`

    @property
    def use_amp(self) -> bool:
        return self.amp_dtype is not None


@dataclasses.dataclass
class StepRecord:
    """What the last step produced, for the hooks: named losses, their reduced sum, timings."""

    losses: LossDict
    total: torch.Tensor
    step_seconds: float
    data_seconds: float


class Trainer:
    """Trains `model` on `dataset` with the schedule in `solver`, writing into `output_dir`.

    `batch` is what `collate_fn` makes of a list of `dataset` items; `criterion(model(batch))`
    gives named scalar losses (`loss_*`; default criterion: the model returns them itself) and
    `reduce_losses` turns them into the scalar that is minimised (default: their sum). `device`:
    default `cuda:<LOCAL_RANK>` if CUDA is available, else CPU. `find_unused_parameters` is passed to DistributedDataParallel.

    What happens around the steps is done by hooks (`plugrcnn.engine.hooks`): `default_hooks()`
    (checkpoints, metrics.jsonl, TensorBoard, progress, loss plot), then `hooks` in their order.
    Only rank 0 writes files.
    """

    def __init__(self, *, model: nn.Module, dataset: Dataset, collate_fn: Callable[[list[Any]], Any],
                 solver: SolverConfig, output_dir: str | Path,
                 criterion: Callable[[Any], LossDict] | None = None,
                 reduce_losses: Callable[[LossDict], torch.Tensor] | None = None,
                 device: str | torch.device | None = None,
                 find_unused_parameters: bool = False, hooks: Sequence[HookBase] = ()) -> None:
        self.model = model
        self.dataset = dataset
        self.collate_fn = collate_fn
        self.solver = solver
        self.output_dir = Path(output_dir)
        self.criterion = criterion or (lambda outputs: outputs)
        self.reduce_losses = reduce_losses or weighted_sum
        self.device = torch.device(device) if device is not None else None
        self.find_unused_parameters = find_unused_parameters
        self.start_iteration: int | None = None  # where the last `train()` began (0 or resumed)
        self.extra_hooks = list(hooks)
        self.hooks: list[HookBase] = []
        self.run: RunState | None = None            # the state of the current / last `train()`
        self.last_step: StepRecord | None = None
        self.latest_metrics: dict[str, Any] = {}  # every entry published for the last iteration
        self.finished = False                    # True once max_iter was reached without error

    # ----------------------------------------------------------------------------- set-up

    def _resolve_device(self) -> torch.device:
        if self.device is not None:
            return self.device
        if torch.cuda.is_available():
            return torch.device("cuda", get_local_rank())
        return torch.device("cpu")

    def _prepare_run(self) -> RunState:
        cfg = self.solver
        world_size = get_world_size()
        if cfg.ims_per_batch % world_size:
            raise PlugrcnnError(f"solver.ims_per_batch: {cfg.ims_per_batch} images cannot be split "
                                f"evenly over {world_size} processes; make it a multiple of {world_size}")
        device = self._resolve_device()
        if device.type == "cuda" and device.index is not None:
            torch.cuda.set_device(device)  # CUDA RNG capture and nccl use the current device
        amp_dtype = training_autocast_dtype(device) if cfg.amp else None
        if cfg.amp and amp_dtype is None:
            logger.warning("solver.amp: no fast dtype on this %s (a CPU needs bf16 instructions); "
                           "training in float32", device)
        model = self.model.to(device).train()
        optimizer = build_optimizer(model, cfg)
        return RunState(model=model, trained_model=model, optimizer=optimizer,
                    scheduler=build_lr_scheduler(optimizer, cfg),
                    # bfloat16 keeps float32's exponent range: no loss scaling on the CPU
                    scaler=torch.amp.GradScaler("cuda", enabled=amp_dtype is torch.float16),
                    device=device, amp_dtype=amp_dtype)

    def _seed_global_rngs(self, *words: int) -> None:
        seed = derive_seed(self.solver.seed, 3, get_rank(), *words)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)

    def _resume(self, run: RunState) -> None:
        path = find_last_checkpoint(self.output_dir)
        if path is None:
            logger.warning("resume: no checkpoint in %s; starting at iteration 0", self.output_dir)
            return
        state = load_checkpoint(path, map_location="cpu")
        missing = [key for key in _RESUME_KEYS if key not in state]
        if missing:
            raise PlugrcnnError(f"{path}: not a training checkpoint (no {', '.join(missing)}); "
                                "resume needs the output directory of a plugrcnn training run")
        try:
            run.model.load_state_dict(state["model"])
        except RuntimeError as exc:
            raise PlugrcnnError(f"{path}: does not fit this model ({str(exc).splitlines()[-1].strip()}); "
                                "was it written with another config?") from None
        run.optimizer.load_state_dict(state["optimizer"])
        run.scheduler.load_state_dict(state["scheduler"])
        if state.get("grad_scaler") and run.scaler.is_enabled():
            run.scaler.load_state_dict(state["grad_scaler"])
        run.iteration = int(state["iteration"])
        run.resumed_from = path.name
        run.data_position = int(state["data"]["position"])
        if state["data"].get("dataset_size") != len(self.dataset):
            logger.warning("resume: the data set had %s images, now %d; the data order changes",
                           state["data"].get("dataset_size"), len(self.dataset))
        rng_states = state["rng"]
        if len(rng_states) == get_world_size():
            restore_rng_state(rng_states[get_rank()])
        else:  # a different number of processes: the model's own draws cannot continue exactly
            logger.warning("resume: %s was written by %d processes, now %d; random draws reseeded",
                           path.name, len(rng_states), get_world_size())
            self._seed_global_rngs(run.iteration)
        logger.info("resume: continuing from %s at iteration %d", path, run.iteration)

    # ----------------------------------------------------------------------------- one step

    def _stop_if_not_finite(self, loss_dict: LossDict, total: torch.Tensor, iteration: int) -> None:
        """Raise on every rank if any loss on any rank is inf / nan (before anything is updated)."""
        names = [*sorted(loss_dict), "total_loss"]
        values = torch.stack([loss_dict[n].detach().float().reshape(()) for n in names[:-1]]
                             + [total.detach().float().reshape(())])
        not_finite = ~torch.isfinite(values)
        if int(all_reduce_sum(not_finite.any().to(torch.int32).reshape(1)).item()) == 0:
            return
        bad = [f"{n}={v:g}" for n, v, b in zip(names, values.tolist(), not_finite.tolist()) if b]
        where = ", ".join(bad) if bad else "on another rank"
        raise PlugrcnnError(
            f"training: non-finite loss at iteration {iteration} ({where}; rank {get_rank()}); "
            "no update was made with it: lower solver.base_lr, raise solver.warmup_iters or set "
            "solver.clip_grad_norm, then resume from the last checkpoint")

    def _step(self, run: RunState, batch: Any) -> tuple[LossDict, torch.Tensor]:
        cfg = self.solver
        with torch.autocast(device_type=run.device.type, dtype=run.amp_dtype, enabled=run.use_amp):
            loss_dict = self.criterion(run.trained_model(batch))
            total = self.reduce_losses(loss_dict)
        self._stop_if_not_finite(loss_dict, total, run.iteration + 1)
        run.optimizer.zero_grad(set_to_none=True)
        run.scaler.scale(total).backward()
        if cfg.clip_grad_norm is not None:
            run.scaler.unscale_(run.optimizer)  # clip the true gradients, not the scaled ones
            torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.clip_grad_norm)
        run.scaler.step(run.optimizer)  # skipped by the scaler if AMP gradients overflowed
        run.scaler.update()
        run.scheduler.step()
        return loss_dict, total

    # ----------------------------------------------------------------------------- hooks

    def default_hooks(self) -> list[HookBase]:
        """Run before the caller's hooks, in this order (checkpoints last: after an evaluation)."""
        return [LossWindowHook(), ProgressHook(), MetricsFileHook(), TensorBoardHook(),
                CheckpointHook(), LossPlotHook()]

    @property
    def iteration(self) -> int:
        """Steps completed so far (0 before the first; resumed runs start at the checkpoint's)."""
        return self.run.iteration if self.run is not None else 0

    def publish(self, entry: dict[str, Any]) -> None:
        """Hand a metrics entry ({"iteration": int, name: float, ...}) to every hook's `on_metrics`."""
        if entry.get("iteration") != self.latest_metrics.get("iteration"):
            self.latest_metrics = {}
        self.latest_metrics.update(entry)
        for hook in self.hooks:
            hook.on_metrics(entry)

    # ----------------------------------------------------------------------------- the loop

    def train(self, resume: bool = False) -> dict[str, Any]:
        """Run to `solver.max_iter` (from the last checkpoint if `resume`); the last metrics entry."""
        setup_distributed()
        run = self.run = self._prepare_run()
        if is_main_process():
            self.output_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_temp_files(self.output_dir)
        self._seed_global_rngs()
        if resume:
            self._resume(run)
        self.start_iteration = run.iteration
        self.finished = False
        self.latest_metrics = {}
        run.trained_model = wrap_model_for_ddp(run.model, run.device, self.find_unused_parameters)
        self.hooks = [*self.default_hooks(), *self.extra_hooks]
        for hook in self.hooks:
            hook.trainer = self
        started: list[HookBase] = []  # a hook whose before_train did not run gets no after_train
        try:
            for hook in self.hooks:
                hook.before_train()
                started.append(hook)
            self._loop(run)
            self.finished = True
        finally:
            for hook in started:
                hook.after_train()
        return dict(self.latest_metrics) or {"iteration": run.iteration}

    def _loop(self, run: RunState) -> None:
        cfg = self.solver
        loader = build_training_loader(
            self.dataset, self.collate_fn, images_per_process=cfg.ims_per_batch // get_world_size(),
            seed=cfg.seed, start_position=run.data_position, num_workers=cfg.num_workers,
            rank=get_rank(), world_size=get_world_size(), pin_memory=run.device.type == "cuda")
        batches = iter(loader)
        try:
            while run.iteration < cfg.max_iter:
                for hook in self.hooks:
                    hook.before_step()
                started = time.perf_counter()
                batch = next(batches)
                data_seconds = time.perf_counter() - started
                loss_dict, total = self._step(run, batch)
                run.iteration += 1
                run.data_position += cfg.ims_per_batch
                self.last_step = StepRecord(loss_dict, total, time.perf_counter() - started, data_seconds)
                for hook in self.hooks:
                    hook.after_step()
        finally:
            del batches  # stops the DataLoader workers
