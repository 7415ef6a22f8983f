"""`plugrcnn convert detectron2` on checkpoints laid out as detectron2 writes them, and the two
pieces that differ from torchvision (stride in the 1x1 conv, BGR 0..255 input) by hand."""
from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.io import write_png

sys.path.insert(0, str(Path(__file__).parent))
from d2_layout import ARCHS, detectron2_state, write_model_zoo_pkl  # noqa: E402

from plugrcnn.cli import main  # noqa: E402
from plugrcnn.config import load_config  # noqa: E402
from plugrcnn.convert.detectron2 import default_config_path, read_detectron2_checkpoint  # noqa: E402
from plugrcnn.modeling.build import build_model  # noqa: E402
from plugrcnn.modeling.weights import load_model_weights, read_state_dict  # noqa: E402

FAST = ("mask_rcnn_R_50_FPN_3x", "keypoint_rcnn_R_50_FPN_1x", "faster_rcnn_R_50_FPN_3x")
SLOW = tuple(a for a in ARCHS if a not in FAST)


def _convert_and_predict(tmp_path: Path, arch: str, pixel_stats: bool = False) -> dict:
    pkl = write_model_zoo_pkl(tmp_path / "model_final_0a1b2c.pkl", detectron2_state(arch, 1, pixel_stats))
    out = tmp_path / "ours.pth"
    assert main(["convert", "detectron2", "--input", str(pkl), "--output", str(out)]) == 0
    cfg = load_config(default_config_path(arch))
    load_model_weights(build_model(cfg).model, out)  # every key present, every shape right
    (tmp_path / "images").mkdir()
    write_png(torch.randint(0, 255, (3, 90, 120), dtype=torch.uint8), str(tmp_path / "images" / "a.png"))
    assert main(["predict", "--config", str(default_config_path(arch)), "--weights", str(out),
                 "--input", str(tmp_path / "images"), "--output", str(tmp_path / "out"),
                 "model.input.min_size_test=96", "model.input.max_size_test=160",
                 "model.detection.score_thresh=0.0"]) == 0
    return json.loads((tmp_path / "out" / "predictions.json").read_text())


@pytest.mark.parametrize("arch", FAST)
def test_detectron2_checkpoint_converts_loads_and_predicts(tmp_path: Path, arch: str) -> None:
    predictions = _convert_and_predict(tmp_path, arch, pixel_stats=arch.startswith("mask"))
    records = predictions["a.png"]
    assert records, "score_thresh 0 keeps detections"
    ids = load_config(default_config_path(arch)).model.category_ids
    assert {r["category_id"] for r in records} <= set(ids)
    assert ("segmentation" in records[0]) == arch.startswith("mask")
    assert ("keypoints" in records[0]) == arch.startswith("keypoint")


@pytest.mark.slow
@pytest.mark.parametrize("arch", SLOW)
def test_detectron2_deeper_checkpoints_convert_load_and_predict(tmp_path: Path, arch: str) -> None:
    assert _convert_and_predict(tmp_path, arch, pixel_stats=True)["a.png"]


def test_architecture_is_read_from_the_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pkl = write_model_zoo_pkl(tmp_path / "k.pkl", detectron2_state("keypoint_rcnn_R_50_FPN_1x"))
    assert main(["convert", "detectron2", "--input", str(pkl), "--output", str(tmp_path / "o.pth")]) == 0
    assert "keypoint_rcnn_R_50_FPN_3x" in capsys.readouterr().out


def test_heads_convert_with_background_moved_and_added(tmp_path: Path) -> None:
    """detectron2: class scores background last, C x 4 deltas, C mask channels; plugrcnn:
    background at label 0 everywhere."""
    state = detectron2_state("mask_rcnn_R_50_FPN_3x", 2)
    out = tmp_path / "o.pth"
    assert main(["convert", "detectron2", "--input", str(write_model_zoo_pkl(tmp_path / "m.pkl", state)),
                 "--output", str(out)]) == 0
    ours = read_state_dict(out)
    cls = torch.from_numpy(state["roi_heads.box_predictor.cls_score.weight"])      # (81, 1024)
    assert torch.equal(ours["roi_stage.heads.class.cls_score.weight"][0], cls[80])
    assert torch.equal(ours["roi_stage.heads.class.cls_score.weight"][1:], cls[:80])
    deltas = torch.from_numpy(state["roi_heads.box_predictor.bbox_pred.bias"])     # (320,)
    assert torch.equal(ours["roi_stage.heads.box.bbox_pred.bias"], torch.cat([torch.zeros(4), deltas]))
    pred = torch.from_numpy(state["roi_heads.mask_head.predictor.weight"])         # (80, 256, 1, 1)
    assert torch.equal(ours["roi_stage.heads.mask.predictor.weight"][1:], pred)
    assert not ours["roi_stage.heads.mask.predictor.weight"][0].any()
    assert torch.equal(ours["roi_stage.heads.mask.convs.3.weight"],
                       torch.from_numpy(state["roi_heads.mask_head.mask_fcn4.weight"]))
    assert torch.equal(ours["backbone.fpn.lateral.0.weight"], torch.from_numpy(state["backbone.fpn_lateral2.weight"]))
    assert torch.equal(ours["backbone.body.layer3.5.bn2.running_var"],
                       torch.from_numpy(state["backbone.bottom_up.res4.5.conv2.norm.running_var"]))


def test_a_source_key_nobody_converts_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = detectron2_state("faster_rcnn_R_50_FPN_3x")
    state["roi_heads.box_head.conv1.norm.weight"] = np.zeros((4, 4), np.float32)
    pkl = write_model_zoo_pkl(tmp_path / "m.pkl", state)
    assert main(["convert", "detectron2", "--input", str(pkl), "--output", str(tmp_path / "o.pth")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "roi_heads.box_head.conv1.norm.weight" in err
    assert not (tmp_path / "o.pth").exists()


def test_a_checkpoint_of_another_shape_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pkl = write_model_zoo_pkl(tmp_path / "m.pkl", detectron2_state("mask_rcnn_R_50_FPN_3x"))
    assert main(["convert", "detectron2", "--arch", "keypoint_rcnn_R_50_FPN_3x", "--input", str(pkl),
                 "--output", str(tmp_path / "o.pth")]) == 2
    assert "mask_head" in capsys.readouterr().err


class _Payload:
    """Unpickling this calls os.system: what a malicious .pkl does."""

    def __reduce__(self) -> tuple:
        import os
        return (os.system, ("touch pwned",))


def test_a_pickle_that_calls_a_function_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    pkl = tmp_path / "model_final_evil.pkl"
    pkl.write_bytes(pickle.dumps({"model": {"x": np.zeros(2, np.float32), "y": _Payload()}}))
    assert main(["convert", "detectron2", "--input", str(pkl), "--output", str(tmp_path / "o.pth")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refused" in err and ("posix.system" in err or "os.system" in err)
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "o.pth").exists()


def test_object_arrays_and_torch_pickles_in_a_pkl_are_refused(tmp_path: Path) -> None:
    from plugrcnn.errors import PlugrcnnError
    objects = tmp_path / "o.pkl"
    objects.write_bytes(pickle.dumps({"model": {"x": np.array([None, 1], dtype=object)}}))
    with pytest.raises(PlugrcnnError, match="not a numeric array"):
        read_detectron2_checkpoint(objects)
    tensors = tmp_path / "t.pkl"
    tensors.write_bytes(pickle.dumps({"model": {"x": torch.zeros(2)}}))
    with pytest.raises(PlugrcnnError, match="refused"):
        read_detectron2_checkpoint(tensors)


def test_a_trained_pth_converts_like_the_pkl(tmp_path: Path) -> None:
    """detectron2's trainer writes torch.save({"model": tensors, "iteration": ...})."""
    state = detectron2_state("faster_rcnn_R_50_FPN_3x", 3)
    torch.save({"model": {k: torch.from_numpy(v) for k, v in state.items()}, "iteration": 89999},
               tmp_path / "model_final.pth")
    write_model_zoo_pkl(tmp_path / "m.pkl", state)
    for name in ("model_final.pth", "m.pkl"):
        assert main(["convert", "detectron2", "--input", str(tmp_path / name),
                     "--output", str(tmp_path / f"{name}.out")]) == 0
    a, b = read_state_dict(tmp_path / "model_final.pth.out"), read_state_dict(tmp_path / "m.pkl.out")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_pixel_statistics_that_disagree_with_the_config_are_an_error(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    state = detectron2_state("mask_rcnn_X_101_32x8d_FPN_3x", pixel_stats=True)
    pkl = write_model_zoo_pkl(tmp_path / "x.pkl", {**state, "pixel_std": np.ones((3, 1, 1), np.float32)})
    assert main(["convert", "detectron2", "--input", str(pkl), "--output", str(tmp_path / "o.pth")]) == 2
    assert "pixel_std" in capsys.readouterr().err


# -- the pieces that differ from torchvision, by hand -------------------------------------------

def test_stem_sees_bgr_0_255_normalised_as_detectron2_does(tmp_path: Path) -> None:
    """A 1-pixel image (R, G, B) = (10, 20, 30). detectron2 feeds (B - 103.53, G - 116.28,
    R - 123.675) / 1 to its stem; with the converted stem and the config's RGB/255 statistics,
    our stem's output must equal the detectron2 stem weights applied to those numbers."""
    state = detectron2_state("mask_rcnn_R_50_FPN_3x", 4)
    out = tmp_path / "o.pth"
    assert main(["convert", "detectron2", "--input", str(write_model_zoo_pkl(tmp_path / "m.pkl", state)),
                 "--output", str(out)]) == 0
    model = build_model(load_config(default_config_path("mask_rcnn_R_50_FPN_3x"))).model
    load_model_weights(model, out)
    image = torch.tensor([10, 20, 30], dtype=torch.uint8).view(3, 1, 1).expand(3, 7, 7).contiguous()
    ours = model.backbone.body.conv1(model.preprocess.normalize(image)[None])   # (1, 64, 4, 4)
    bgr_input = torch.tensor([30 - 103.53, 20 - 116.28, 10 - 123.675]).view(1, 3, 1, 1).expand(1, 3, 7, 7)
    theirs = F.conv2d(bgr_input, torch.from_numpy(state["backbone.bottom_up.stem.conv1.weight"]),
                      stride=2, padding=3)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-5)


def test_msra_blocks_stride_in_the_1x1_conv() -> None:
    """With stride_in_1x1 the first block of res3 subsamples before its 3x3 conv: its 1x1
    output is the 1x1 conv of every second input pixel (by hand), and the 3x3 conv keeps size."""
    cfg = load_config(default_config_path("mask_rcnn_R_50_FPN_3x"))
    body = build_model(cfg).model.backbone.body
    block = body.layer2[0]
    assert block.conv1.stride == (2, 2) and block.conv2.stride == (1, 1)
    assert body.layer1[0].conv1.stride == (1, 1)
    x = torch.randn(1, 256, 8, 8)
    by_hand = torch.einsum("oi,nihw->nohw", block.conv1.weight[:, :, 0, 0], x[:, :, ::2, ::2])
    torch.testing.assert_close(block.conv1(x), by_hand, atol=1e-5, rtol=1e-5)
    assert block.conv2(block.conv1(x)).shape[-2:] == (4, 4)
    x101 = build_model(load_config(default_config_path("mask_rcnn_X_101_32x8d_FPN_3x"))).model.backbone.body
    assert x101.layer2[0].conv1.stride == (1, 1) and x101.layer2[0].conv2.stride == (2, 2)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_numpy_pickles_of_every_protocol_are_read(tmp_path: Path, protocol: int) -> None:
    """Python 3 writes bytes as _codecs.encode under protocol 2 and arrays as _frombuffer under
    protocol 5: both are admitted, and give the arrays back."""
    array = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps({"model": {"a": array}, "__author__": "x"}, protocol=protocol))
    assert torch.equal(read_detectron2_checkpoint(path)["a"], torch.from_numpy(array))
