"""Downloads into the cache: hash checks, nothing left under the final name on failure,
offline mode, which URLs are accepted."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from plugrcnn.errors import PlugrcnnError
from plugrcnn.zoo.catalog import hash_prefix_of
from plugrcnn.zoo.download import check_url, fetch
from plugrcnn.zoo.resolve import resolve_weights

BODY = b"checkpoint bytes " * 5000


def test_hash_prefix_is_read_from_torch_hub_style_names() -> None:
    assert hash_prefix_of("https://download.pytorch.org/models/maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth") == "bf2d0c1e"
    assert hash_prefix_of("https://x/model_final_f10217.pkl") is None
    assert hash_prefix_of("https://x/resnet-50.pth") is None  # "50" is not a hash


def test_a_matching_file_is_saved_once(file_server, zoo_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    digest = hashlib.sha256(BODY).hexdigest()
    file_server.files["/m/w.pth"] = BODY
    dest = zoo_home / "downloads" / "w.pth"
    assert fetch(file_server.url("/m/w.pth"), dest, digest[:8]) == dest
    assert dest.read_bytes() == BODY
    assert "download w.pth" in capsys.readouterr().err  # the progress bar
    fetch(file_server.url("/m/w.pth"), dest, digest[:8])
    assert file_server.requests == ["/m/w.pth"]  # the second call did not ask the server


def test_a_hash_mismatch_leaves_no_file_under_the_final_name(file_server, zoo_home: Path) -> None:
    file_server.files["/m/w-0123abcd.pth"] = BODY
    dest = zoo_home / "downloads" / "w-0123abcd.pth"
    with pytest.raises(PlugrcnnError, match="does not match the published 0123abcd"):
        fetch(file_server.url("/m/w-0123abcd.pth"), dest, "0123abcd")
    assert not dest.exists()
    assert [p.name for p in dest.parent.iterdir()] == []  # no partial file either


def test_without_a_published_hash_the_first_download_is_recorded_and_later_ones_checked(
        file_server, zoo_home: Path) -> None:
    file_server.files["/d2/model_final_abc.pkl"] = BODY
    url, dest = file_server.url("/d2/model_final_abc.pkl"), zoo_home / "downloads" / "model_final_abc.pkl"
    fetch(url, dest, None)
    dest.unlink()
    file_server.files["/d2/model_final_abc.pkl"] = BODY + b"changed"
    with pytest.raises(PlugrcnnError, match=hashlib.sha256(BODY).hexdigest()):
        fetch(url, dest, None)
    assert not dest.exists()


def test_offline_and_uncached_names_the_url_and_the_cache_path(zoo_home: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLUGRCNN_OFFLINE", "1")
    dest = zoo_home / "downloads" / "x.pth"
    with pytest.raises(PlugrcnnError) as info:
        fetch("https://example.invalid/x.pth", dest, None)
    assert "https://example.invalid/x.pth" in str(info.value) and str(dest) in str(info.value)


def test_plain_http_only_from_loopback() -> None:
    assert check_url("http://127.0.0.1:8000/a/b.pth") == "b.pth"
    assert check_url("https://example.org/a/b.pth") == "b.pth"
    with pytest.raises(PlugrcnnError, match="loopback"):
        check_url("http://example.org/a/b.pth")
    with pytest.raises(PlugrcnnError, match="https"):
        check_url("ftp://example.org/a/b.pth")


def test_an_unreachable_server_is_one_clear_error(zoo_home: Path) -> None:
    with pytest.raises(PlugrcnnError, match="download failed"):
        resolve_weights("http://127.0.0.1:9/nothing/here.pth")  # port 9 (discard): refused


def test_an_unknown_zoo_name_lists_the_known_ones(zoo_home: Path) -> None:
    with pytest.raises(PlugrcnnError, match="tv:maskrcnn_resnet50_fpn"):
        resolve_weights("tv:maskrcnn_resnet50_fpn_v9")
