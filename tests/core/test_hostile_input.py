"""Issue 11's cases one by one: images, configs, COCO segmentations, weights, outputs, arguments.

The fuzz test (test_fuzz_hostile_input.py) explores; these pin each fixed case to its message.
"""
from __future__ import annotations

import errno
import json
import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils

from plugrcnn.cli import main
from plugrcnn.config import load_config
from plugrcnn.data.coco import CocoDataset
from plugrcnn.data.coco_annotations import compressed_rle_counts
from plugrcnn.engine import checkpoint as checkpoint_module
from plugrcnn.engine.checkpoint import load_checkpoint, save_checkpoint
from plugrcnn.errors import PlugrcnnError, one_line
from plugrcnn.inference.images import read_header, read_image
from plugrcnn.modeling.build import build_model, resolve_device
from plugrcnn.outputs import write_json_atomic

SMALL = ("model:\n  num_classes: 1\n  backbone: {name: resnet18}\n  fpn: {out_channels: 16}\n"
         "  box_trunk: {fc_dim: 32}\n  input: {min_size_train: [64], max_size_train: 96, "
         "min_size_test: 64, max_size_test: 96}\n"
         "  heads: {class: {}, box: {}}\n  device: cpu\n")


def png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("small")
    config = root / "small.yaml"
    config.write_text(SMALL)
    weights = root / "small.pth"
    torch.save({"model": build_model(load_config(config)).model.state_dict()}, weights)
    return {"config": config, "weights": weights}


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return code, err


# -- images ---------------------------------------------------------------------------------------

def test_an_image_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(20000, 20000))
    with pytest.raises(PlugrcnnError, match=r"bomb\.png: image is 20000x20000 \(400\.0 MP\), over the "
                                            r"limit of 40 MP; refused before decoding"):
        read_image(bomb)
    assert read_header(bomb, max_pixels=400_000_000).width == 20000  # the limit is a setting


def test_the_first_frame_of_an_animated_gif(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (6, 5), colour) for colour in ((250, 0, 0), (0, 0, 250))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    pixels = read_image(path)
    assert tuple(pixels.shape) == (3, 5, 6) and pixels[0].float().mean() > 200 and pixels[2].max() < 50


def test_a_16_bit_png_is_scaled_not_truncated(tmp_path: Path) -> None:
    path = tmp_path / "deep.png"
    Image.fromarray(np.array([[0, 257, 32896, 65535]], dtype=np.uint16).repeat(2, 0)).save(path)
    assert read_image(path)[:, 0].tolist() == [[0, 1, 128, 255]] * 3


def test_a_too_thin_image_names_its_size(small, tmp_path: Path, capsys) -> None:
    thin = tmp_path / "thin.png"
    Image.fromarray(np.zeros((3, 300, 3), np.uint8)).save(thin)
    code, err = run(["predict", "--config", str(small["config"]), "--weights", str(small["weights"]),
                     "--input", str(thin), "--output", str(tmp_path / "out")], capsys)
    assert code == 2 and "thin.png: image is 300x3 pixels" in err and "it would be 96x0" in err


def test_a_png_and_a_jpg_of_one_name_get_two_drawings(small, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(folder / "a.png")
    Image.new("RGB", (50, 20), (10, 10, 200)).save(folder / "a.jpg")
    code, err = run(["predict", "--config", str(small["config"]), "--weights", str(small["weights"]),
                     "--input", str(folder), "--output", str(tmp_path / "out")], capsys)
    assert code == 0, err
    with Image.open(tmp_path / "out" / "a.png.png") as png, Image.open(tmp_path / "out" / "a.jpg.png") as jpg:
        assert (png.size, jpg.size) == ((40, 30), (50, 20))


# -- configs -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("override", "message"), [
    ("model.input.min_size_train=[]", "key model.input.min_size_train: needs at least 1 item(s)"),
    ("model.fpn.out_channels=0", "key model.fpn.out_channels: must be in [1, 4096], got 0"),
    ("model.device=tpu", "key model.device: must be auto, cpu, cuda, cuda:N or mps, got 'tpu'"),
    ("model.rpn.positive_fraction=2.0", "key model.rpn.positive_fraction: must be in (0, 1], got 2.0"),
    ("model.rpn.nms_thresh=.nan", "key model.rpn.nms_thresh: must be a finite number, got nan"),
    ("model.sampler.bg_iou_threshold=0.9", "bg_iou_threshold: 0.9 is above fg_iou_threshold 0.5"),
])
def test_config_values_out_of_range(small, override: str, message: str) -> None:
    with pytest.raises(PlugrcnnError) as caught:
        load_config(small["config"], [override])
    assert str(caught.value).startswith("command line: ") and message in str(caught.value)


def test_a_range_error_names_the_file_that_set_the_key(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(SMALL + "solver: {num_workers: -1}\n")
    with pytest.raises(PlugrcnnError, match=rf"^{config}: key solver.num_workers: must be in \[0, 256\], got -1$"):
        load_config(config)


def test_a_moved_key_says_where_it_went(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(SMALL + "data: {num_workers: 1}\n")
    with pytest.raises(PlugrcnnError, match=rf"^{config}: key data.num_workers has moved to solver.num_workers; set it there$"):
        load_config(config)


def test_an_infinite_learning_rate_is_refused_before_training(small, capsys) -> None:
    code, err = run(["train", "--config", str(small["config"]), "solver.base_lr=.inf"], capsys)
    assert code == 2 and err.endswith("command line: key solver.base_lr: must be a finite number, got inf")


def test_binary_and_self_referencing_configs(small, tmp_path: Path) -> None:
    binary = tmp_path / "weights.yaml"
    binary.write_bytes(small["weights"].read_bytes()[:2048])
    with pytest.raises(PlugrcnnError, match="not a YAML text file"):
        load_config(binary)
    loop = tmp_path / "loop.yaml"
    loop.write_text("model: &a {heads: *a}\n")
    with pytest.raises(PlugrcnnError, match="refers to itself"):
        load_config(loop)


def test_a_device_this_machine_lacks() -> None:
    with pytest.raises(PlugrcnnError, match="cuda:99"):
        resolve_device("cuda:99")


# -- COCO segmentations ----------------------------------------------------------------------------

def test_compressed_rle_counts_decode_to_the_runs_of_the_mask() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        height, width = rng.integers(1, 30, 2)
        mask = (rng.random((height, width)) < rng.random()).astype(np.uint8)
        flat = mask.flatten(order="F")  # COCO runs go down the columns, starting with zeros
        changes = np.flatnonzero(np.diff(flat)) + 1
        runs = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
        expected = ([0] + runs) if flat[0] == 1 else runs
        encoded = mask_utils.encode(np.asfortranarray(mask))["counts"].decode()
        assert compressed_rle_counts(encoded) == expected


def _dataset(tmp_path: Path, segmentations: list) -> tuple[CocoDataset, list[str]]:
    (tmp_path / "images").mkdir(exist_ok=True)
    Image.new("RGB", (24, 16)).save(tmp_path / "images" / "a.png")
    annotations = [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5], "iscrowd": 0,
                    "segmentation": seg} for i, seg in enumerate(segmentations)]
    path = tmp_path / "instances.json"
    path.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.png", "height": 16, "width": 24}],
                                "annotations": annotations, "categories": [{"id": 1, "name": "x"}]}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = CocoDataset.from_files(path, tmp_path / "images", training=False)
    return dataset, [str(w.message) for w in caught]


def test_malformed_rle_counts_are_skipped_with_a_warning(tmp_path: Path) -> None:
    good = {"size": [16, 24], "counts": mask_utils.encode(np.asfortranarray(np.ones((16, 24), np.uint8)))["counts"].decode()}
    dataset, messages = _dataset(tmp_path, [good, {"size": [16, 24], "counts": "zz!"},
                                            {"size": [16, 24], "counts": "0S1"}, {"size": [16, 24], "counts": ""}])
    assert dataset.skipped_ids["bad_segmentation"] == [2, 3, 4]
    assert any("annotation id 2" in m and "not a character of COCO's format" in m for m in messages)
    assert any("annotation id 3" in m and "cover 35 pixels, not 16*24" in m for m in messages)


def test_an_empty_segmentation_is_skipped_only_where_the_file_has_masks(tmp_path: Path) -> None:
    masked, _ = _dataset(tmp_path, [[[1, 1, 6, 1, 6, 6]], []])
    assert masked.skipped_ids["bad_segmentation"] == [2]
    box_only, messages = _dataset(tmp_path, [[], []])
    assert box_only.skipped_ids["bad_segmentation"] == [] and messages == []


# -- weights and checkpoints -----------------------------------------------------------------------

class _RunsCode:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("echo never",))


def test_weights_errors_say_what_was_wrong(small, tmp_path: Path, capsys) -> None:
    image = tmp_path / "a.png"
    Image.new("RGB", (40, 30)).save(image)
    empty, evil, tv = tmp_path / "empty.pth", tmp_path / "evil.pth", tmp_path / "tv.pth"
    empty.write_bytes(b"")
    torch.save({"model": _RunsCode()}, evil)
    torch.save({"backbone.body.conv1.weight": torch.zeros(1), "roi_heads.mask_predictor.mask_fcn_logits.weight":
                torch.zeros(1)}, tv)
    errors = {}
    for weights in (empty, evil, tv):
        code, err = run(["predict", "--config", str(small["config"]), "--weights", str(weights), "--input",
                         str(image), "--output", str(tmp_path / "out")], capsys)
        assert code == 2 and len(err.splitlines()) == 1
        errors[weights.name] = err
    assert "empty.pth: weights file is empty (0 bytes)" in errors["empty.pth"]
    assert "refused by torch.load(weights_only=True)" in errors["evil.pth"]
    assert "system" in errors["evil.pth"] and errors["evil.pth"].endswith("are read)")  # not cut short
    assert "plugrcnn convert torchvision --arch maskrcnn_resnet50_fpn" in errors["tv.pth"]


def test_a_full_disk_during_a_checkpoint_is_one_error_naming_it(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "model_final.pth"
    save_checkpoint(path, {"w": torch.ones(3)})

    def save_on_a_full_disk(state, file):  # torch.save: ENOSPC, then its zip writer complains
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc] unexpected pos") from None

    monkeypatch.setattr(checkpoint_module.torch, "save", save_on_a_full_disk)
    with pytest.raises(OSError) as caught:
        save_checkpoint(path, {"w": torch.zeros(3)})
    assert caught.value.filename == str(path) and caught.value.errno == errno.ENOSPC
    assert caught.value.__suppress_context__  # one error, not a chained pair
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["w"], torch.ones(3))


# -- outputs --------------------------------------------------------------------------------------

def test_atomic_json_keeps_the_earlier_file_on_a_full_disk(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "metrics.json"
    write_json_atomic(path, {"AP": 0.5})

    def fsync_on_a_full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", fsync_on_a_full_disk)
    with pytest.raises(PlugrcnnError, match=r"metrics\.json: cannot write \(no space left on device\)"):
        write_json_atomic(path, {"AP": 0.7})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"AP": 0.5}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]  # no temp file left


def test_an_output_path_that_is_a_file(small, tmp_path: Path, capsys) -> None:
    image = tmp_path / "a.png"
    Image.new("RGB", (40, 30)).save(image)
    blocker = tmp_path / "taken"
    blocker.write_text("")
    code, err = run(["predict", "--config", str(small["config"]), "--weights", str(small["weights"]),
                     "--input", str(image), "--output", str(blocker / "out")], capsys)
    assert code == 2 and err.endswith(f"{blocker / 'out'}: cannot be used as an output folder: {blocker} is a file")


# -- training data and worker errors ---------------------------------------------------------------

def test_a_worker_error_reaches_the_user_as_one_line(small, tmp_path: Path, capsys) -> None:
    images = tmp_path / "images"
    images.mkdir()
    records, annotations = [], []
    for i in range(2):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (64, 80, 3)).astype(np.uint8)).save(
            images / f"{i}.png")
        records.append({"id": i + 1, "file_name": f"{i}.png", "height": 64, "width": 80})
        annotations.append({"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [5, 5, 30, 20]})
    data = (images / "1.png").read_bytes()
    (images / "1.png").write_bytes(data[: len(data) // 2])  # a good header, half the pixels
    instances = tmp_path / "train.json"
    instances.write_text(json.dumps({"images": records, "annotations": annotations,
                                     "categories": [{"id": 1, "name": "x"}]}))
    code, err = run(["train", "--config", str(small["config"]), f"output_dir={tmp_path / 'out'}",
                     f"data.train.instances={instances}", f"data.train.images={images}",
                     "solver={max_iter: 2, ims_per_batch: 1, num_workers: 1, warmup_iters: 0}"], capsys)
    lines = [line for line in err.splitlines() if ": error: " in line or "Error" in line]
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith("plugrcnn train: error: ") and "1.png: cannot decode image id 2" in lines[0]


def test_one_line_unwraps_a_dataloader_worker_traceback() -> None:
    wrapped = PlugrcnnError("Caught PlugrcnnError in DataLoader worker process 0.\nOriginal Traceback (most "
                            "recent call last):\n  File \"x.py\", line 1\nplugrcnn.errors.PlugrcnnError: "
                            "a.png: cannot decode image id 3 (truncated)\n")
    assert one_line(wrapped) == "a.png: cannot decode image id 3 (truncated)"


# -- export and bench arguments ----------------------------------------------------------------------

@pytest.mark.parametrize(("argv", "message"), [
    (["export", "--format", "onnx", "--output", "m.onnx", "--height", "100000", "--width", "64"],
     "--height must be in 1..8192, got 100000"),
    (["export", "--format", "onnx", "--output", "m.onnx", "--max-detections", "0"],
     "--max-detections must be in 1..3839, got 0"),
    (["bench", "--height", "64", "--width", "64", "--iterations", "0"], "--iterations must be in 1..1000000, got 0"),
    (["bench", "--height", "64", "--width", "64", "--warmup", "-1"], "--warmup must be in 0..1000000, got -1"),
    (["bench", "--height", "64", "--width", "64", "--frame-height", "0"], "--frame-height must be in 1..8192, got 0"),
])
def test_export_and_bench_arguments_out_of_bounds(small, capsys, argv: list[str], message: str) -> None:
    code, err = run([argv[0], "--config", str(small["config"]), "--weights", str(small["weights"]), *argv[1:]],
                    capsys)
    assert code == 2 and len(err.splitlines()) == 1 and message in err


def test_an_export_input_smaller_than_the_coarsest_stride(small, tmp_path: Path, capsys) -> None:
    code, err = run(["export", "--config", str(small["config"]), "--weights", str(small["weights"]), "--format",
                     "onnx", "--output", str(tmp_path / "m.onnx"), "--height", "1", "--width", "64"], capsys)
    assert code == 2 and "1x64: each side must be at least 64 pixels" in err
    assert not (tmp_path / "m.onnx").exists()
