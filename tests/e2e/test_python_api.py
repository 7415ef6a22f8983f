"""The Python API beyond README's snippet: a third party's field, batching, train, evaluate, export."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import plugrcnn
from plugrcnn.errors import PlugrcnnError
from conftest import tiny_config

HEADS = "    class: {}\n    box: {}\n    area: {}\n"  # area: tests/plugins/area_head


@pytest.mark.slow
def test_api_trains_predicts_with_a_third_party_head_and_evaluates(tmp_path: Path,
                                                                   tiny_synthetic: Path) -> None:
    config = tiny_config(tmp_path, tiny_synthetic, HEADS)
    model = plugrcnn.load(config, device="cpu")
    model.train(output_dir=tmp_path / "run", overrides={"solver.max_iter": 1})
    assert model.weights == tmp_path / "run" / "model_final.pth"
    images = sorted((tiny_synthetic / "val").glob("*.png"))
    results = model(images, batch_size=2)
    assert isinstance(results, list) and len(results) == len(images)
    one = results[0]
    assert set(one.fields) == {"area"} and one.area is one.fields["area"]
    assert one.area.shape == one.scores.shape and len(one.names) == len(one)
    assert set(one.names) <= set(model.class_names)
    with pytest.raises(AttributeError, match="fields: area"):
        one.masks  # noqa: B018 - the mask head is not enabled
    with pytest.raises(PlugrcnnError, match=r"\.png.*\.json"):
        one.save(tmp_path / "picture.jpg")
    records = one.to_coco(image_id=7)
    assert len(records) == len(one) and all(r["image_id"] == 7 and "area_pred" in r for r in records)
    # a batch of one and a batch of several give the same detections for the same image
    alone = model(images[0])
    assert torch.allclose(alone.boxes, one.boxes, atol=1e-3)
    metrics = model.evaluate(output_dir=tmp_path / "eval", progress=False)
    assert set(metrics) == {"bbox", "area"} and (tmp_path / "eval" / "metrics.json").exists()
    # export + verify against PyTorch (a mismatch raises and removes the file)
    exported = model.export(tmp_path / "model.onnx", format="onnx", height=96, width=96,
                            max_detections=10, verify=True)
    assert exported.stat().st_size > 0


def test_load_names_a_missing_weights_file(tmp_path: Path, tiny_synthetic: Path) -> None:
    config = tiny_config(tmp_path, tiny_synthetic, HEADS)
    with pytest.raises(PlugrcnnError, match="missing.pth: no such weights file"):
        plugrcnn.load(config, weights=tmp_path / "missing.pth")


def test_masks_are_pasted_when_first_read(tmp_path: Path, tiny_synthetic: Path) -> None:
    heads = "    class: {}\n    box: {}\n    mask: {num_conv: 1, conv_dim: 16}\n"
    config = tiny_config(tmp_path, tiny_synthetic, heads)
    model = plugrcnn.load(config, device="cpu", overrides=["model.num_classes=3"])
    image = sorted((tiny_synthetic / "val").glob("*.png"))[0]
    result = model(image)
    assert len(result) > 0 and result._finalize  # nothing pasted yet
    assert result._raw["pred_masks"].shape[-2:] != (96, 96)  # still the head's low-res masks
    boxes = result.boxes
    assert result._finalize  # reading boxes pastes nothing
    masks = result.masks
    assert not result._finalize and masks.shape == (len(result), 96, 96) and masks.dtype == torch.bool
    # the same as the model's own eager output
    eager = model.predictor([model(image).image])[0]
    assert torch.equal(eager["pred_masks"].cpu(), masks) and torch.equal(eager["pred_boxes"].cpu(), boxes)
    assert model.predictor.model.heads["mask"].finalize.__func__ is type(model.predictor.model.heads["mask"]).finalize
