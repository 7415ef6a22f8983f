from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from plugrcnn.engine.checkpoint import find_last_checkpoint, load_checkpoint
from plugrcnn.engine.metrics import MetricsWriter, plot_loss_curves, read_metrics
from plugrcnn.engine.training_sampler import TrainingIndexStream, build_training_loader
from plugrcnn.errors import PlugrcnnError

TOY_TRAINING_SCRIPT = Path(__file__).with_name("toy_training.py")


def _take(iterator, count: int) -> list:
    return [next(iterator) for _ in range(count)]


def _final_weights(output_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(output_dir / "model_final.pth")["model"]


def _assert_same_weights(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert actual.keys() == expected.keys()
    for name in expected:
        assert torch.equal(actual[name], expected[name]), name


@pytest.fixture(scope="module")
def reference_run(toy, tmp_path_factory) -> Path:
    """An uninterrupted 12-step toy run (checkpoints every 3 steps), to compare resumed runs with."""
    output_dir = tmp_path_factory.mktemp("reference")
    toy.make_trainer(output_dir, toy.toy_solver(max_iter=12, period=3)).train()
    return output_dir


# ------------------------------------------------------------------------------- data order


def test_index_stream_restarts_exactly_and_shuffles_each_epoch():
    stream = list(zip(range(23), TrainingIndexStream(5, seed=3)))
    indices = [index for _, (index, _) in stream]
    assert [position for _, (_, position) in stream] == list(range(23))
    for epoch in range(4):
        assert sorted(indices[5 * epoch: 5 * epoch + 5]) == [0, 1, 2, 3, 4]
    assert indices[0:5] != indices[5:10]  # a new permutation each epoch
    restarted = _take(iter(TrainingIndexStream(5, seed=3, start_position=12)), 11)
    assert [index for index, _ in restarted] == indices[12:23]


def test_two_ranks_split_every_step_into_different_halves(toy):
    dataset = toy.ToyDataset(10)
    def loader(rank: int, world_size: int):
        return iter(build_training_loader(
            dataset, toy.collate_list, images_per_process=4 // world_size, seed=7, start_position=0,
            num_workers=0, rank=rank, world_size=world_size))
    single, rank0, rank1 = loader(0, 1), loader(0, 2), loader(1, 2)
    for _ in range(4):  # crosses the epoch boundary at image 10
        full = next(single)
        half0, half1 = next(rank0), next(rank1)
        assert not torch.equal(half0[0]["x"], half1[0]["x"])  # each rank gets its own images
        # the same images with the same augmentation: interleaved positions 0, 2 | 1, 3
        assert [i["index"] for i in full] == [half0[0]["index"], half1[0]["index"],
                                             half0[1]["index"], half1[1]["index"]]
        assert torch.equal(full[1]["x"], half1[0]["x"])


def test_batches_do_not_depend_on_workers_or_restart_point(toy):
    dataset = toy.ToyDataset(10)
    def batches(num_workers: int, start_position: int, count: int) -> list:
        loader = build_training_loader(dataset, toy.collate_list, images_per_process=4, seed=7,
                                       start_position=start_position, num_workers=num_workers,
                                       rank=0, world_size=1)
        return [torch.stack([item["x"] for item in batch]) for batch in _take(iter(loader), count)]
    in_process = batches(num_workers=0, start_position=0, count=4)
    with_workers = batches(num_workers=2, start_position=0, count=4)
    restarted = batches(num_workers=0, start_position=8, count=2)  # step 2 onwards
    assert all(torch.equal(a, b) for a, b in zip(in_process, with_workers))
    assert all(torch.equal(a, b) for a, b in zip(in_process[2:], restarted))
    assert not torch.equal(in_process[0], in_process[1])


# ------------------------------------------------------------------------------- training


def test_uninterrupted_run_writes_bounded_checkpoints_metrics_and_plot(reference_run):
    names = sorted(p.name for p in reference_run.iterdir() if not p.name.startswith("events.out.tfevents."))
    assert len(list(reference_run.glob("events.out.tfevents.*"))) == 1  # TensorBoard's
    assert names == ["last_checkpoint", "loss_curves.png", "metrics.jsonl", "model_0000006.pth",
                     "model_0000009.pth", "model_final.pth"]  # model_0000003 pruned (keep 2)
    assert (reference_run / "last_checkpoint").read_text().strip() == "model_final.pth"
    assert load_checkpoint(reference_run / "model_0000009.pth")["iteration"] == 9
    entries = read_metrics(reference_run / "metrics.jsonl")
    assert [e["iteration"] for e in entries] == [2, 4, 6, 8, 10, 12]  # log_period 2
    last = entries[-1]
    assert last["total_loss"] == pytest.approx(last["loss_mse"] + last["loss_l1"], rel=1e-5)
    assert last["lr"] == pytest.approx(0.005)  # step 12 is after the decay at step 8
    assert entries[0]["lr"] == pytest.approx(0.05 * (0.001 * 2 / 3 + 1 / 3))  # step 2 = index 1
    assert (reference_run / "loss_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_after_a_failure_ends_with_the_weights_of_an_unbroken_run(toy, tmp_path, reference_run):
    crashing = toy.ToyModel(nan_at_call=8)  # stops the run at step 8, after checkpoint 6
    with pytest.raises(PlugrcnnError):
        toy.make_trainer(tmp_path, toy.toy_solver(), crashing).train()
    assert load_checkpoint(find_last_checkpoint(tmp_path))["iteration"] == 6

    fresh = toy.ToyModel(seed=5)  # different initial weights: they must come from the checkpoint
    trainer = toy.make_trainer(tmp_path, toy.toy_solver(), fresh)
    result = trainer.train(resume=True)
    assert trainer.start_iteration == 6 and fresh.forward_calls == 6
    _assert_same_weights(_final_weights(tmp_path), _final_weights(reference_run))
    expected = read_metrics(reference_run / "metrics.jsonl")[-1]
    assert result["iteration"] == 12
    assert result["total_loss"] == expected["total_loss"]  # same data, same dropout draws


def test_non_finite_loss_names_the_term_and_iteration_and_makes_no_update(toy, tmp_path):
    model = toy.ToyModel(nan_at_call=5)
    with pytest.raises(PlugrcnnError, match=r"non-finite loss at iteration 5 \(loss_mse=nan, "
                                            r"total_loss=nan; rank 0\)"):
        toy.make_trainer(tmp_path / "nan", toy.toy_solver(), model).train()
    four_steps = toy.ToyModel()
    toy.make_trainer(tmp_path / "four", toy.toy_solver(max_iter=4), four_steps).train()
    _assert_same_weights(model.state_dict(), four_steps.state_dict())


class _AutocastRecorder(torch.nn.Module):
    """Wraps a toy model and records, per forward, the CPU autocast dtype in force (or None)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.seen: list[torch.dtype | None] = []

    def forward(self, batch):
        on = torch.is_autocast_enabled("cpu")
        self.seen.append(torch.get_autocast_dtype("cpu") if on else None)
        return self.model(batch)


def test_amp_on_a_bf16_cpu_trains_under_bfloat16_autocast(toy, tmp_path, monkeypatch):
    monkeypatch.setattr("plugrcnn.engine.trainer.cpu_supports_bf16", lambda: True)
    model = _AutocastRecorder(toy.ToyModel())
    result = toy.make_trainer(tmp_path, toy.toy_solver(max_iter=2, amp=True), model).train()
    assert result["iteration"] == 2
    assert model.seen == [torch.bfloat16, torch.bfloat16]
    plain = _AutocastRecorder(toy.ToyModel())
    toy.make_trainer(tmp_path / "fp32", toy.toy_solver(max_iter=2), plain).train()
    assert plain.seen == [None, None]


def test_amp_on_a_cpu_without_bf16_is_noted_and_trains_in_float32(toy, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr("plugrcnn.engine.trainer.cpu_supports_bf16", lambda: False)
    model = _AutocastRecorder(toy.ToyModel())
    with caplog.at_level(logging.WARNING, logger="plugrcnn.engine.trainer"):
        result = toy.make_trainer(tmp_path, toy.toy_solver(max_iter=2, amp=True), model).train()
    assert "solver.amp: no fast dtype on this cpu" in caplog.text
    assert result["iteration"] == 2 and model.seen == [None, None]


def test_sigkilled_run_resumes_from_its_last_checkpoint(toy, tmp_path, reference_run):
    command = [sys.executable, str(TOY_TRAINING_SCRIPT), "--output-dir", str(tmp_path),
               "--max-iter", "12", "--period", "3", "--sleep", "0.2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    try:
        while not (tmp_path / "last_checkpoint").exists():
            assert process.poll() is None, process.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "no checkpoint within 60 s"
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate()
    assert process.returncode == -signal.SIGKILL
    assert not (tmp_path / "model_final.pth").exists()  # killed before the end
    for path in tmp_path.glob("model_*.pth"):
        load_checkpoint(path)  # every file under a final name is complete
    killed_at = load_checkpoint(find_last_checkpoint(tmp_path))["iteration"]
    assert 3 <= killed_at < 12

    model = toy.ToyModel(seed=5)
    trainer = toy.make_trainer(tmp_path, toy.toy_solver(max_iter=12, period=3), model)
    trainer.train(resume=True)
    assert trainer.start_iteration == killed_at and model.forward_calls == 12 - killed_at
    _assert_same_weights(_final_weights(tmp_path), _final_weights(reference_run))


# ------------------------------------------------------------------------------- metrics


def test_plot_keeps_the_latest_line_per_iteration_after_a_resume(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    first_run = [{"iteration": i, "loss_a": 1.0, "total_loss": 1.0, "lr": 0.1} for i in (2, 4, 6)]
    second_run = [{"iteration": i, "loss_a": 0.5, "total_loss": 0.5, "lr": 0.1} for i in (4, 6, 8)]
    metrics.write_text("".join(json.dumps(e) + "\n" for e in first_run)
                       + '{"iteration": 8, "loss_a": 0.9\n'  # half a line from a killed run
                       + "".join(json.dumps(e) + "\n" for e in second_run))
    series = plot_loss_curves(metrics, tmp_path / "loss_curves.png")
    assert series["loss_a"] == ([2, 4, 6, 8], [1.0, 0.5, 0.5, 0.5])
    assert list(series) == ["loss_a", "total_loss"]
    assert (tmp_path / "loss_curves.png").read_bytes()[:4] == b"\x89PNG"


def test_metrics_writer_drops_a_half_written_last_line(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text('{"iteration": 2, "loss_a": 1.0}\n{"iteration": 4, "lo')
    writer = MetricsWriter(metrics)
    writer.write({"iteration": 4, "loss_a": 0.5})
    writer.close()
    assert metrics.read_text().splitlines() == ['{"iteration": 2, "loss_a": 1.0}',
                                                '{"iteration": 4, "loss_a": 0.5}']

