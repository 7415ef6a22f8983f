"""`plugrcnn predict --weights tv:maskrcnn_resnet50_fpn` against a loopback server: download with
a progress bar, hash check, conversion once, the cache on the second run, offline behaviour.

PLUGRCNN_ZOO_CATALOG points the entry at the loopback server and a test file (random
torchvision weights); the real entry's URL and hash are not used, nothing leaves the machine."""
from __future__ import annotations

import hashlib
import io
import json
import sys
from pathlib import Path

import pytest
import torch
from torchvision.io import write_png

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "parity"))
from tv_fixtures import make_torchvision_model  # noqa: E402

from plugrcnn.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["model.input.min_size_test=128", "model.input.max_size_test=192"]


@pytest.fixture(scope="module")
def tv_bytes() -> bytes:
    buffer = io.BytesIO()
    torch.save(make_torchvision_model("maskrcnn_resnet50_fpn", seed=5, delta_std=1e-4).state_dict(), buffer)
    return buffer.getvalue()


def _serve(file_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: bytes,
           published: bytes) -> tuple[str, str]:
    """Serve `body` under a torchvision-style name carrying the sha256 prefix of `published`."""
    name = f"maskrcnn_resnet50_fpn_coco-{hashlib.sha256(published).hexdigest()[:8]}.pth"
    file_server.files[f"/models/{name}"] = body
    url = file_server.url(f"/models/{name}")
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps({"tv:maskrcnn_resnet50_fpn": {
        "url": url, "source": "torchvision", "arch": "maskrcnn_resnet50_fpn",
        "config": str(ROOT / "configs" / "torchvision" / "maskrcnn_resnet50_fpn.yaml"),
        "ap": {"bbox": 37.9, "segm": 34.6}}}))
    monkeypatch.setenv("PLUGRCNN_ZOO_CATALOG", str(catalog))
    return name, url


def _images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir(exist_ok=True)
    write_png(torch.randint(0, 255, (3, 100, 140), dtype=torch.uint8,
                            generator=torch.Generator().manual_seed(0)), str(folder / "a.png"))
    return folder


def _predict(tmp_path: Path, out: str) -> int:
    return main(["predict", "--weights", "tv:maskrcnn_resnet50_fpn", "--input", str(_images(tmp_path)),
                 "--output", str(tmp_path / out), "--no-draw", *SMALL])


def test_zoo_name_downloads_converts_once_then_runs_from_the_cache(
        file_server, zoo_home: Path, tmp_path: Path, tv_bytes: bytes,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    name, _ = _serve(file_server, tmp_path, monkeypatch, tv_bytes, tv_bytes)
    assert _predict(tmp_path, "first") == 0
    err = capsys.readouterr().err
    assert f"download {name}" in err and "100%" in err       # the progress bar reached the end
    assert (zoo_home / "downloads" / name).read_bytes() == tv_bytes
    converted = zoo_home / "converted" / "torchvision" / f"{name[:-4]}.pth"
    assert converted.is_file()
    assert len(file_server.requests) == 1
    stamp = converted.stat().st_mtime_ns
    monkeypatch.setenv("PLUGRCNN_OFFLINE", "1")
    assert _predict(tmp_path, "second") == 0
    assert len(file_server.requests) == 1 and converted.stat().st_mtime_ns == stamp  # cache only
    first = json.loads((tmp_path / "first" / "predictions.json").read_text())
    assert first == json.loads((tmp_path / "second" / "predictions.json").read_text())
    assert main(["zoo"]) == 0
    listing = capsys.readouterr().out
    assert any(line.startswith("tv:maskrcnn_resnet50_fpn ") and "bbox 37.9, segm 34.6" in line
               and line.rstrip().endswith("yes") for line in listing.splitlines())


def test_a_file_that_does_not_match_its_published_hash_is_rejected(
        file_server, zoo_home: Path, tmp_path: Path, tv_bytes: bytes,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    name, _ = _serve(file_server, tmp_path, monkeypatch, tv_bytes + b"tampered", tv_bytes)
    assert _predict(tmp_path, "out") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "does not match the published" in err[-1]
    assert not (zoo_home / "downloads" / name).exists()
    assert not list((zoo_home / "downloads").iterdir())          # no partial file either
    assert not (zoo_home / "converted").exists()


def test_offline_without_a_cached_file_fails_in_one_line(
        file_server, zoo_home: Path, tmp_path: Path, tv_bytes: bytes,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    name, url = _serve(file_server, tmp_path, monkeypatch, tv_bytes, tv_bytes)
    monkeypatch.setenv("PLUGRCNN_OFFLINE", "1")
    assert _predict(tmp_path, "out") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and url in err and str(zoo_home / "downloads" / name) in err
    assert file_server.requests == []


def test_a_detectron2_zoo_name_downloads_records_its_hash_converts_and_predicts(
        file_server, zoo_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "convert"))
    from d2_layout import detectron2_state, write_model_zoo_pkl

    body = write_model_zoo_pkl(tmp_path / "model_final_f10217.pkl",
                               detectron2_state("mask_rcnn_R_50_FPN_3x", 7)).read_bytes()
    path = "/detectron2/COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x/137849600/model_final_f10217.pkl"
    file_server.files[path] = body
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps({"d2:mask_rcnn_R_50_FPN_3x": {
        "url": file_server.url(path), "source": "detectron2", "arch": "mask_rcnn_R_50_FPN_3x",
        "config": str(ROOT / "configs" / "detectron2" / "mask_rcnn_R_50_FPN_3x.yaml")}}))
    monkeypatch.setenv("PLUGRCNN_ZOO_CATALOG", str(catalog))
    assert main(["predict", "--weights", "d2:mask_rcnn_R_50_FPN_3x", "--input", str(_images(tmp_path)),
                 "--output", str(tmp_path / "out"), "--no-draw", *SMALL]) == 0
    assert "download model_final_f10217.pkl" in capsys.readouterr().err
    assert (zoo_home / "converted" / "detectron2" / "model_final_f10217.pth").is_file()
    recorded = json.loads((zoo_home / "recorded_sha256.json").read_text())
    assert recorded == {file_server.url(path): hashlib.sha256(body).hexdigest()}
