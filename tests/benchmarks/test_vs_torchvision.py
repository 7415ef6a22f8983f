"""The side-by-side benchmark runs end to end at a tiny size: its JSON has every figure, and the
parity check finds plugrcnn's exact-mode detections identical to torchvision's. No timing is
asserted (speed lives in the benchmark's printout)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    pytest.importorskip("plugrcnn_mask")
    sys.path.insert(0, str(BENCHMARKS))
    import vs_torchvision
    return vs_torchvision


@pytest.mark.slow
def test_benchmark_json_has_every_figure_and_exact_mode_is_identical(bench, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "bench.json"
    assert bench.main(["--size", "96x128", "--train-size", "96", "--repeats", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["size"] == [96, 128] and report["mode"] == "exact" and report["machine"]["threads"] >= 1
    inference = report["inference"]
    assert list(inference["stages"]) == ["preprocess", "backbone+fpn", "rpn", "roi_heads", "paste"]
    for row in [*inference["stages"].values(), inference["end_to_end"]]:
        assert row["torchvision"] > 0 and row["plugrcnn"] > 0
        assert row["ratio"] == pytest.approx(row["torchvision"] / row["plugrcnn"])
    assert set(inference["peak_rss_mib"]) == {"torchvision", "plugrcnn"}
    parity = inference["parity"]
    assert parity["count_torchvision"] > 10, "the fixture should give detections to compare"
    assert parity["matched"] == parity["count_plugrcnn"] == parity["count_torchvision"]
    assert parity["same_order"] and parity["identical"] and parity["within_limits"]
    assert parity["max_box_diff_px"] <= 1e-3 and parity["min_mask_iou"] >= 0.99
    training = report["training"]
    assert training["images"] == 2 and training["size"] == 96
    assert training["torchvision"] > 0 and training["plugrcnn"] > 0
    # both models learn from the same targets: finite losses of the same order
    assert 0.2 < training["losses_plugrcnn"][0] / training["losses_torchvision"][0] < 5
    printed = capsys.readouterr().out
    assert "end to end" in printed and "identical: True" in printed and "training step" in printed


@pytest.mark.parametrize("argv,message", [
    (["--size", "800by1066"], "--size: expected HEIGHTxWIDTH"),
    (["--train-only", "--no-train"], "leave nothing to measure"),
])
def test_bad_arguments_are_refused(bench, capsys: pytest.CaptureFixture, argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench.parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_training_only_under_bf16_autocast(bench, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from plugrcnn.inference.runtime import cpu_supports_bf16

    if not cpu_supports_bf16():
        pytest.skip("this CPU has no bf16 instructions (--train-amp refuses to run)")
    out = tmp_path / "bench.json"
    assert bench.main(["--train-only", "--train-amp", "--train-size", "96", "--repeats", "1",
                       "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert "inference" not in report and report["training"]["amp"] is True
    losses = report["training"]["losses_plugrcnn"] + report["training"]["losses_torchvision"]
    assert all(0 < loss < 100 for loss in losses)
    assert "both bfloat16 autocast" in capsys.readouterr().out


@pytest.fixture(scope="module")
def ceiling():
    sys.path.insert(0, str(BENCHMARKS))
    import exact_ceiling
    return exact_ceiling


@pytest.mark.slow
def test_exact_ceiling_profiles_torchvision_matrix_work(ceiling) -> None:
    r = ceiling.measure("mask", 96, 128, repeats=1)
    assert r["aten::mkldnn_convolution"] > 0 or r.get("aten::_slow_conv2d_forward", 0) > 0
    assert 0 < r["matrix"] < r["total"]  # convs are not the only work: the ceiling is above 1


@pytest.mark.slow
def test_training_ceiling_counts_the_convolutions_backward(ceiling) -> None:
    r = ceiling.measure_training("mask", 96, repeats=1)
    assert r["aten::convolution_backward"] > 0 and r["aten::mkldnn_convolution"] > 0
    assert 0 < r["matrix"] < r["total"]
