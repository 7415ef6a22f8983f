"""torch.distributed for training launched by `torchrun` (there is no plugrcnn launcher).

    torchrun --nproc_per_node 2 -m plugrcnn.cli train --config CFG        # one machine
    torchrun --nnodes 2 --node_rank R --master_addr HOST --nproc_per_node 8 -m plugrcnn.cli ...

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; `setup_distributed`
reads them (gloo on CPU, nccl on CUDA). Without them every helper here answers for one process.
"""
from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from plugrcnn.errors import PlugrcnnError

_TORCHRUN_VARIABLES = ("RANK", "MASTER_ADDR", "MASTER_PORT")


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def get_local_rank() -> int:
    """This process's index on its machine (its GPU), from torchrun's LOCAL_RANK."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main_process() -> bool:
    """Rank 0: the one process that writes checkpoints, metrics and plots."""
    return get_rank() == 0


def setup_distributed() -> None:
    """Join the process group described by torchrun's env vars; no-op for one process or if joined."""
    if is_distributed() or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return
    missing = [name for name in _TORCHRUN_VARIABLES if name not in os.environ]
    if missing:
        raise PlugrcnnError(f"environment: WORLD_SIZE={os.environ['WORLD_SIZE']} but "
                            f"{', '.join(missing)} unset; start multi-process training with torchrun")
    if torch.cuda.is_available():
        torch.cuda.set_device(get_local_rank())  # nccl collectives run on the current device
        backend = "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend=backend, init_method="env://")


def shutdown_distributed() -> None:
    if is_distributed():
        # every rank past its last collective before any tears its process group down: a rank
        # that exits while another still talks to it can abort in gloo's threads at exit
        dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    if get_world_size() > 1:
        dist.barrier()


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's `obj` (picklable), in rank order; `[obj]` for one process."""
    if get_world_size() == 1:
        return [obj]
    gathered: list[Any] = [None] * get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum of `tensor` over ranks (a new tensor; the input is left alone)."""
    total = tensor.clone()
    if get_world_size() > 1:
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total


def all_reduce_mean_dict(values: dict[str, torch.Tensor]) -> dict[str, float]:
    """Mean over ranks of each scalar, for logging; every rank must pass the same keys."""
    names = sorted(values)
    if not names:
        return {}
    stacked = torch.stack([values[name].detach().float().reshape(()) for name in names])
    mean = all_reduce_sum(stacked) / get_world_size()
    return dict(zip(names, mean.tolist()))


def wrap_model_for_ddp(model: nn.Module, device: torch.device,
                       find_unused_parameters: bool = False) -> nn.Module:
    """DistributedDataParallel around `model` when there is more than one process, else `model`.

    `find_unused_parameters=True` is needed when some parameters get no gradient in a step
    (e.g. a head whose loss is skipped for a batch without its annotations); it costs a graph walk.
    """
    if get_world_size() == 1:
        return model
    device_ids = [device.index if device.index is not None else get_local_rank()] \
        if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids,
                                   find_unused_parameters=find_unused_parameters)
