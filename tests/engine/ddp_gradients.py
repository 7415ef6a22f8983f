"""Run by test_ddp.py under `torchrun --standalone --nproc_per_node 2` (gloo, CPU).

Every rank: (1) one forward/backward of the toy model wrapped by the Trainer's DDP helper on its
own half of a 4-image step; all ranks' gradients, their halves and the gradient of the whole
step computed in one process are gathered; (2) a 4-step Trainer run on 2 processes, written to
OUTPUT_DIR/trainer. Rank 0 writes what it gathered to OUTPUT_DIR/result.json for the test.
"""
from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).parent))
import toy_training  # noqa: E402  (the sibling module, next to this script)

from plugrcnn.engine.distributed import (  # noqa: E402
    all_gather_objects,
    get_rank,
    get_world_size,
    is_main_process,
    setup_distributed,
    shutdown_distributed,
    wrap_model_for_ddp,
)
from plugrcnn.engine.eval_hooks import BestCheckpointHook, PeriodicEvalHook  # noqa: E402
from plugrcnn.engine.losses import weighted_sum  # noqa: E402
from plugrcnn.engine.training_sampler import build_training_loader  # noqa: E402

IMAGES_PER_STEP = 4


def _first_batch(dataset, rank: int, world_size: int) -> list[dict]:
    loader = build_training_loader(dataset, toy_training.collate_list,
                                   images_per_process=IMAGES_PER_STEP // world_size, seed=7,
                                   start_position=0, num_workers=0, rank=rank, world_size=world_size)
    return next(iter(loader))


def _flat_gradient(model: torch.nn.Module, batch: list[dict]) -> torch.Tensor:
    weighted_sum(model(batch)).backward()
    return torch.cat([p.grad.reshape(-1) for p in model.parameters()])


def _gather(tensor: torch.Tensor) -> list[torch.Tensor]:
    gathered = [torch.empty_like(tensor) for _ in range(get_world_size())]
    dist.all_gather(gathered, tensor)
    return gathered


def check_gradients() -> dict:
    dataset = toy_training.ToyDataset(10)
    model = toy_training.ToyModel(seed=get_rank() + 10, dropout=0.0)  # DDP must sync the weights
    ddp_model = wrap_model_for_ddp(model, torch.device("cpu"))
    my_half = _first_batch(dataset, get_rank(), get_world_size())
    my_inputs = torch.stack([item["x"] for item in my_half])  # (2, 4)
    ddp_gradient = _flat_gradient(ddp_model, my_half)
    single_process_model = copy.deepcopy(model)  # the weights DDP broadcast from rank 0
    single_process_model.zero_grad()
    full_gradient = _flat_gradient(single_process_model, _first_batch(dataset, 0, 1))
    gradients, inputs = _gather(ddp_gradient), _gather(my_inputs)
    return {
        "world_size": get_world_size(),
        "gradients": [g.tolist() for g in gradients],
        "inputs": [x.tolist() for x in inputs],
        "full_batch_gradient": full_gradient.tolist(),
        "full_batch_inputs": torch.stack([i["x"] for i in _first_batch(dataset, 0, 1)]).tolist(),
    }


def main() -> int:
    output_dir = Path(sys.argv[1])
    setup_distributed()
    result = check_gradients()
    solver = toy_training.toy_solver(max_iter=4, period=2)
    evaluated_at: list[int] = []  # this rank's evaluation calls (only rank 0 should evaluate)

    def evaluate(model: torch.nn.Module) -> dict:
        evaluated_at.append(trainer.iteration)
        return {"toy": {"score": float(trainer.iteration)}}

    trainer = toy_training.Trainer(
        model=toy_training.ToyModel(dropout=0.0), dataset=toy_training.ToyDataset(10),
        collate_fn=toy_training.collate_list, solver=solver, output_dir=output_dir / "trainer",
        device="cpu", hooks=[PeriodicEvalHook(evaluate, period=2), BestCheckpointHook("toy/score")])
    trainer.train()
    result["evaluated_at_by_rank"] = all_gather_objects(evaluated_at)
    if is_main_process():
        (output_dir / "result.json").write_text(json.dumps(result))
    shutdown_distributed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
