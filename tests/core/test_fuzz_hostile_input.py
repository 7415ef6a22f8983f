"""Property-based fuzzing of what users hand to the CLI: image files, COCO JSON files, configs.

Every generated input goes through the loader and the CLI entry point (`plugrcnn.cli.main`,
in-process for speed; a few cases as real subprocesses, to catch native crashes), and the
outcome must be one of two: exit 0 with valid output, or exit 2 with exactly one error line on
stderr (data set warnings, one line each, aside). Never a traceback, never a signal.

Bounded: a fixed number of examples per property, derandomised (the same inputs every run),
no example database written to the checkout.
"""
from __future__ import annotations

import io
import json
import math
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from plugrcnn.cli import main  # noqa: E402
from plugrcnn.config import load_config  # noqa: E402
from plugrcnn.config.ranges import range_problems  # noqa: E402
from plugrcnn.data.coco import CocoDataset  # noqa: E402
from plugrcnn.errors import PlugrcnnError  # noqa: E402
from plugrcnn.inference.images import read_image  # noqa: E402
from plugrcnn.modeling.build import build_model  # noqa: E402

SMALL = ("model:\n  num_classes: 2\n  backbone: {name: resnet18}\n  fpn: {out_channels: 16}\n"
         "  box_trunk: {fc_dim: 32}\n  input: {min_size_test: 64, max_size_test: 96}\n"
         "  rpn: {pre_nms_topk_test: 50, post_nms_topk_test: 20}\n"
         "  heads: {class: {}, box: {}, mask: {conv_dim: 8, num_conv: 1}}\n  device: cpu\n")
FUZZ = settings(deadline=None, derandomize=True, database=None, print_blob=False,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])


# main() flushes denormals to zero for the whole process (torch.set_flush_denormal), so every
# float strategy is told to draw no subnormal numbers


def fuzz(examples: int) -> settings:
    return settings(FUZZ, max_examples=examples)


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fuzz_model")
    config = root / "small.yaml"
    config.write_text(SMALL)
    torch.manual_seed(0)
    weights = root / "small.pth"
    torch.save({"model": build_model(load_config(config)).model.state_dict()}, weights)
    return {"config": config, "weights": weights, "root": root}


def outcome(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """(exit code, stderr lines that are not data set warnings); checks the one-line rule."""
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip() and ": warning: " not in line]
    assert code in (0, 2), (code, err)
    if code == 2:
        assert len(lines) == 1 and lines[0].startswith(f"plugrcnn {argv[0]}: error: "), err
    return code, lines


# -- image files ---------------------------------------------------------------------------

MODES = ("L", "RGB", "RGBA", "LA", "P", "PA", "1", "I;16", "I", "CMYK", "F")
FORMATS = {"png": ".png", "jpeg": ".jpg", "bmp": ".bmp", "gif": ".gif", "tiff": ".tif", "webp": ".webp"}


def _pixels(mode: str, height: int, width: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    if mode in ("I;16", "I"):  # 16-bit grey, as 16-bit PNGs and TIFFs hold it
        array = rng.integers(0, 65536, (height, width))
        return Image.fromarray(array.astype(np.uint16 if mode == "I;16" else np.int32))
    if mode == "F":
        return Image.fromarray(rng.random((height, width)).astype(np.float32))
    rgba = Image.fromarray(rng.integers(0, 256, (height, width, 4)).astype(np.uint8), "RGBA")
    return rgba.convert(mode)


def _encode(image: Image.Image, fmt: str, frames: int) -> bytes | None:
    buffer = io.BytesIO()
    try:
        if frames > 1 and fmt in ("gif", "tiff", "webp", "png"):
            more = [image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)] * (frames - 1)
            image.save(buffer, format=fmt, save_all=True, append_images=more)
        else:
            image.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # Pillow cannot write this mode in this format
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height (an image bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


sides = st.one_of(st.integers(1, 8), st.integers(9, 120), st.sampled_from([300, 600]))


@st.composite
def image_files(draw: st.DrawFn) -> tuple[str, bytes]:
    """(suffix, file bytes): every mode and format Pillow writes, multi-frame, truncated, bombs."""
    if draw(st.integers(0, 9)) == 0:
        return ".png", png_claiming(draw(st.sampled_from([7000, 20000, 65535])), draw(st.integers(6000, 20000)))
    fmt = draw(st.sampled_from(sorted(FORMATS)))
    shape = draw(st.sampled_from(["any", "any", "strip", "tiny"]))
    if shape == "strip":  # 2..4 pixels across and hundreds long: too thin for the model's resize
        height, width = draw(st.integers(2, 4)), draw(st.integers(150, 600))
        if draw(st.booleans()):
            height, width = width, height
    elif shape == "tiny":
        height, width = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    else:
        height, width = draw(sides), draw(sides)
    if height * width > 40_000:  # keep the decoded size small: these test shapes, not bulk
        height = max(1, 40_000 // width)
    image = _pixels(draw(st.sampled_from(MODES)), height, width, draw(st.integers(0, 3)))
    data = _encode(image, fmt, draw(st.sampled_from([1, 1, 3])))
    if data is None:
        data = _encode(image.convert("RGB"), fmt, 1) or b""
    cut = draw(st.one_of(st.none(), st.none(), st.floats(0.0, 0.99, allow_subnormal=False)))
    if cut is not None:
        data = data[: int(len(data) * cut)]
    return FORMATS[fmt], data


@fuzz(30)
@given(image_files())
def test_predict_on_any_image_file(model_files, tmp_path_factory, capsys, case) -> None:
    suffix, data = case
    folder = tmp_path_factory.mktemp("img")
    path = folder / f"input{suffix}"
    path.write_bytes(data)
    out = folder / "out"
    code, lines = outcome(["predict", "--config", str(model_files["config"]), "--weights",
                           str(model_files["weights"]), "--input", str(path), "--output", str(out)], capsys)
    if code == 2:
        assert str(path) in lines[0]  # the error names the file
        assert not (out / "predictions.json").exists()
        return
    records = json.loads((out / "predictions.json").read_text())
    assert set(records) == {path.name}
    with Image.open(path) as original, Image.open(out / f"{path.name}.png") as drawn:
        assert drawn.size == original.size and drawn.mode == "RGB"


@fuzz(40)
@given(height=st.integers(2, 40), width=st.integers(2, 40), seed=st.integers(0, 99),
       mode=st.sampled_from(["I;16", "L", "RGB", "RGBA", "P"]))
def test_images_become_the_right_8_bit_rgb(tmp_path_factory, height, width, seed, mode) -> None:
    """16-bit values are scaled (v * 255 / 65535, rounded), not truncated or wrapped; grey is
    repeated over three channels; alpha is composited onto white."""
    image = _pixels(mode, height, width, seed)
    path = tmp_path_factory.mktemp("px") / "a.png"
    image.save(path)
    got = read_image(path).permute(1, 2, 0).numpy().astype(np.int64)
    assert got.shape == (height, width, 3)
    if mode == "I;16":
        values = np.asarray(image, dtype=np.int64)
        expected = np.repeat(np.floor(values * 255 / 65535 + 0.5)[..., None], 3, axis=2)
    elif mode in ("L", "RGB"):
        expected = np.asarray(image.convert("RGB"), dtype=np.int64)
    else:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float64)
        alpha = rgba[..., 3:] / 255.0
        expected = rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)
    assert np.abs(got - expected).max() <= 1


# -- COCO JSON files --------------------------------------------------------------------------

numbers = st.one_of(st.integers(-5, 100), st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False),
                    st.sampled_from([0, 1, 2]))
junk = st.one_of(st.none(), st.booleans(), st.text(max_size=4), numbers, st.lists(st.integers(-2, 3), max_size=3),
                 st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
rle_text = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=12)
segmentations = st.one_of(
    st.just([]), st.just([[]]), junk,
    st.lists(st.lists(st.one_of(st.floats(-5, 40, allow_subnormal=False), numbers), min_size=0, max_size=10), max_size=3),
    st.fixed_dictionaries({"size": st.one_of(st.just([16, 24]), st.lists(st.integers(0, 30), max_size=3)),
                           "counts": st.one_of(rle_text, st.just("0S1"), st.lists(st.integers(-3, 400), max_size=4),
                                               st.just([0, 384]), junk)}),
)


@st.composite
def coco_files(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 11)) == 0:  # not COCO at all
        return draw(st.recursive(junk, lambda inner: st.lists(inner, max_size=3)
                                 | st.dictionaries(st.sampled_from(["images", "annotations", "categories"]),
                                                   inner, max_size=3), max_leaves=8))
    images = [{"id": 1, "file_name": "a.png", "height": 16, "width": 24},
              {"id": 2, "file_name": draw(st.sampled_from(["b.png", "missing.png", "bad.png", "thin.png"])),
               "height": draw(st.sampled_from([16, 17, 1])), "width": 24}]
    annotations = []
    for index in range(draw(st.integers(0, 4))):
        annotation = {"id": draw(st.integers(1, 4)), "image_id": draw(st.sampled_from([1, 2, 3])),
                      "category_id": draw(st.sampled_from([1, 1, 7])),
                      "bbox": draw(st.one_of(st.just([2, 2, 8, 6]), st.lists(numbers, max_size=5), junk)),
                      "iscrowd": draw(st.sampled_from([0, 0, 1]))}
        if draw(st.booleans()):
            annotation["segmentation"] = draw(segmentations)
        annotations.append(annotation)
    coco = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "thing"}]}
    if draw(st.integers(0, 5)) == 0:  # break one record's type
        key = draw(st.sampled_from(["images", "annotations", "categories"]))
        if coco[key]:
            coco[key][0][draw(st.sampled_from(["id", "height", "file_name", "bbox", "name"]))] = draw(junk)
    return coco


@pytest.fixture(scope="module")
def coco_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("coco_images")
    for name in ("a.png", "b.png"):
        Image.fromarray(np.full((16, 24, 3), 90, np.uint8)).save(folder / name)
    (folder / "bad.png").write_bytes(png_claiming(24, 16))  # a good header, then no pixels
    Image.fromarray(np.zeros((1, 24, 3), np.uint8)).save(folder / "thin.png")
    return folder


def _decodable(segmentation: Any, height: int, width: int) -> None:
    """What evaluation and the mask head do with a kept segmentation must work."""
    from pycocotools import mask as mask_utils

    if segmentation in (None, []):
        return
    if isinstance(segmentation, list):
        rles = mask_utils.frPyObjects(segmentation, height, width)
        rle = mask_utils.merge(rles)
    elif isinstance(segmentation["counts"], list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = {"size": segmentation["size"], "counts": segmentation["counts"].encode()}
    assert mask_utils.decode(rle).shape == (height, width)
    assert mask_utils.area(rle) <= height * width


@fuzz(300)
@given(coco_files())
def test_coco_files_load_clean_or_fail_in_one_line(coco_images, tmp_path_factory, coco) -> None:
    path = tmp_path_factory.mktemp("coco") / "instances.json"
    path.write_text(json.dumps(coco, allow_nan=True))
    try:
        with warnings.catch_warnings():  # warnings are the skip-and-warn rule at work
            warnings.simplefilter("ignore")
            dataset = CocoDataset.from_files(path, coco_images, training=False, check_headers=True,
                                             resize_to=(64, 96))
    except PlugrcnnError as error:
        assert "\n" not in str(error) and str(path) in str(error)
        return
    for index in range(len(dataset)):
        try:
            item = dataset[index]
        except PlugrcnnError as error:  # pixel data damaged after a good header: found when loaded
            assert "\n" not in str(error) and "bad.png: cannot decode image id" in str(error)
            continue
        assert tuple(item["image"].shape) == (3, item["height"], item["width"])
        for annotation in item["annotations"]:
            assert all(math.isfinite(v) for v in annotation["box"])
            _decodable(annotation.get("segmentation"), item["height"], item["width"])


@fuzz(8)
@given(coco_files())
def test_eval_on_any_coco_file(model_files, coco_images, tmp_path_factory, capsys, coco) -> None:
    folder = tmp_path_factory.mktemp("eval")
    instances = folder / "instances.json"
    instances.write_text(json.dumps(coco, allow_nan=True))
    out = folder / "eval"
    code, lines = outcome(["eval", "--config", str(model_files["config"]), "--weights",
                           str(model_files["weights"]), "--output-dir", str(out),
                           f"data.val.instances={instances}", f"data.val.images={coco_images}"], capsys)
    if code == 0:
        metrics = json.loads((out / "metrics.json").read_text())
        assert set(metrics) == {"bbox", "segm"}
        assert all(-1.0 <= v <= 1.0 for kind in metrics.values() for v in kind.values())
        assert isinstance(json.loads((out / "coco_results.json").read_text()), list)


# -- configs -----------------------------------------------------------------------------------

NUMERIC_KEYS = ("model.input.min_size_test", "model.input.max_size_test", "model.input.min_size_train",
                "model.input.pixel_std", "model.input.max_image_pixels", "model.fpn.out_channels",
                "model.rpn.positive_fraction", "model.rpn.nms_thresh", "model.rpn.iou_thresholds",
                "model.rpn.post_nms_topk_test", "model.sampler.batch_size_per_image",
                "model.detection.detections_per_image", "model.detection.score_thresh",
                "model.anchors.sizes", "model.anchors.aspect_ratios", "model.pooler.canonical_level",
                "model.box_trunk.num_fc", "solver.num_workers", "model.num_classes",
                "model.heads.mask.conv_dim", "model.heads.box.scale_clamp")
config_values = st.one_of(
    st.integers(-3, 3), st.integers(-10**30, 10**30), st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False),
    st.sampled_from([".inf", "-.inf", ".nan", "[]", "[[]]", "{}", "null", "tpu", "1e999", "[0.8, 0.3]",
                     "[[0]]", "cuda:99", "!!python/object/apply:os.system [echo]", "&a [*a]"]),
    st.lists(st.one_of(st.integers(-2, 900), st.floats(-1, 2, allow_subnormal=False)), max_size=3),
)


def _yaml_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value) if not isinstance(value, float) or \
        math.isfinite(value) else {math.inf: ".inf", -math.inf: "-.inf"}.get(value, ".nan")


@st.composite
def config_files(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.binary(max_size=64))
    if kind == 1:
        return draw(st.text(max_size=40)).encode()
    lines = [SMALL]
    for key in draw(st.lists(st.sampled_from(NUMERIC_KEYS), min_size=1, max_size=3, unique=True)):
        *parents, leaf = key.split(".")
        body = f"{leaf}: {_yaml_value(draw(config_values))}"
        for depth, parent in enumerate(reversed(parents)):
            body = f"{parent}: {{{body}}}"
        lines.append(body)
    return "\n".join(lines).encode()


def _all_ranges_hold(node: Any) -> None:
    import dataclasses

    if dataclasses.is_dataclass(node):
        assert range_problems(node) == []
        for f in dataclasses.fields(node):
            _all_ranges_hold(getattr(node, f.name))
    elif isinstance(node, (list, tuple)):
        for item in node:
            _all_ranges_hold(item)
    elif isinstance(node, float):
        assert math.isfinite(node)


@fuzz(300)
@given(config_files(), st.lists(st.tuples(st.sampled_from(NUMERIC_KEYS), config_values), max_size=2))
def test_configs_load_in_range_or_fail_in_one_line(tmp_path_factory, text, overrides) -> None:
    path = tmp_path_factory.mktemp("cfg") / "fuzz.yaml"
    path.write_bytes(text)
    opts = [f"{key}={_yaml_value(value)}" for key, value in overrides]
    try:
        cfg = load_config(path, opts)
    except PlugrcnnError as error:
        assert "\n" not in str(error)
        assert str(path) in str(error) or "command line" in str(error)
        return
    _all_ranges_hold(cfg)


@fuzz(20)
@given(st.tuples(st.sampled_from(NUMERIC_KEYS), config_values))
def test_predict_with_any_config_value(model_files, tmp_path_factory, capsys, override) -> None:
    folder = tmp_path_factory.mktemp("cfgcli")
    image = folder / "a.png"
    Image.fromarray(np.full((48, 64, 3), 120, np.uint8)).save(image)
    key, value = override
    code, lines = outcome(["predict", "--config", str(model_files["config"]), "--weights",
                           str(model_files["weights"]), "--input", str(image), "--output",
                           str(folder / "out"), "--no-draw", f"{key}={_yaml_value(value)}"], capsys)
    if code == 0:
        assert json.loads((folder / "out" / "predictions.json").read_text()).keys() == {"a.png"}


# -- real processes: native crashes show up only here ----------------------------------------

def _subprocess_cases(root: Path, model_files: dict[str, Path]) -> list[tuple[list[str], str]]:
    bomb = root / "bomb.png"
    bomb.write_bytes(png_claiming(20000, 20000))
    thin = root / "thin.png"
    Image.fromarray(np.zeros((1, 300, 3), np.uint8)).save(thin)
    good = root / "good.png"
    Image.fromarray(np.full((48, 64, 3), 99, np.uint8)).save(good)
    empty = root / "empty.pth"
    empty.write_bytes(b"")
    binary = root / "binary.yaml"
    binary.write_bytes(model_files["weights"].read_bytes()[:4096])
    base = ["--config", str(model_files["config"]), "--weights", str(model_files["weights"])]
    return [
        (["predict", *base, "--input", str(bomb), "--output", str(root / "o1")], "over the limit"),
        (["export", *base, "--format", "onnx", "--output", str(root / "m.onnx"), "--height", "64",
          "--width", "64", "--verify", "--verify-images", str(thin)], "at least 2"),
        (["predict", "--config", str(model_files["config"]), "--weights", str(empty), "--input", str(good),
          "--output", str(root / "o2")], "empty"),
        (["predict", "--config", str(binary), "--weights", str(model_files["weights"]), "--input", str(good),
          "--output", str(root / "o3")], "not a YAML text file"),
    ]


# the child runs every case through main(), each with its own stderr; a native crash kills it
_CHILD = """
import contextlib, io, json, sys
from plugrcnn.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    results.append([code, err.getvalue()])
print(json.dumps(results))
"""


def test_hostile_files_in_a_real_process(model_files, tmp_path) -> None:
    cases = _subprocess_cases(tmp_path, model_files)
    done = subprocess.run([sys.executable, "-c", _CHILD, json.dumps([argv for argv, _ in cases])],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])  # a signal is negative
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for (argv, expected), (code, err) in zip(cases, results, strict=True):
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and expected in lines[0], (argv, code, err[-2000:])
