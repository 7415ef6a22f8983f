"""The Python API's input conversion and config/weights resolution (no model needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from plugrcnn.api.inputs import is_batch, to_image_tensor
from plugrcnn.api.resolve import is_zoo_name, resolve
from plugrcnn.errors import PlugrcnnError


def test_path_numpy_pil_and_tensor_give_the_same_uint8_chw(tmp_path: Path) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 0, 10)  # channel order must survive: red stays in channel 0
    Image.fromarray(rgb).save(tmp_path / "a.png")
    expected = torch.from_numpy(rgb).permute(2, 0, 1)
    for image in (tmp_path / "a.png", str(tmp_path / "a.png"), rgb, Image.fromarray(rgb),
                  expected.clone(), expected.float() / 255.0):
        got = to_image_tensor(image)
        assert got.dtype == torch.uint8 and got.shape == (3, 5, 7)
        assert torch.equal(got, expected), type(image)
    assert to_image_tensor(Image.fromarray(rgb).convert("L")).shape == (3, 5, 7)


@pytest.mark.parametrize("bad, words", [
    (np.zeros((4, 4, 3), np.float32), "uint8"),
    (np.zeros((3, 4, 5), np.uint8), "HxWx3"),
    (torch.zeros(4, 4, 3, dtype=torch.uint8), "3xHxW"),
    (torch.full((3, 4, 4), 2.0), "[0, 1]"),
    (42, "int"),
])
def test_bad_images_are_errors_naming_what_was_wrong(bad: object, words: str) -> None:
    with pytest.raises(PlugrcnnError, match=words.replace("[", r"\[").replace("]", r"\]")):
        to_image_tensor(bad)


def test_one_image_or_a_batch() -> None:
    assert not is_batch(torch.zeros(3, 4, 4)) and is_batch(torch.zeros(2, 3, 4, 4))
    assert is_batch(["a.png"]) and not is_batch("a.png")


def test_resolve_paths_and_zoo_names(tmp_path: Path) -> None:
    config, weights = tmp_path / "c.yaml", tmp_path / "w.pth"
    config.write_text("{}")
    weights.write_bytes(b"x")
    assert resolve(str(config), None) == (config, None)
    assert resolve(config, str(weights)) == (config, weights)
    with pytest.raises(PlugrcnnError, match="missing.pth: no such weights file"):
        resolve(config, tmp_path / "missing.pth")
    with pytest.raises(PlugrcnnError, match="missing.yaml: no such config file"):
        resolve(tmp_path / "missing.yaml", None)
    with pytest.raises(PlugrcnnError, match="not in the model zoo"):
        resolve("zz:no_such_model", None)  # a zoo name, checked against the catalogue offline
    assert is_zoo_name("tv:maskrcnn_resnet50_fpn") and not is_zoo_name(str(config))
    assert not is_zoo_name("https://example.org/w.pth") and not is_zoo_name("C:/w.pth")
