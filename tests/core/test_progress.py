"""Progress off a terminal: periodic lines on stderr, and a last one with the count."""
from __future__ import annotations

import pytest

from plugrcnn.progress import progress


def test_lines_when_stderr_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert list(progress(range(3), desc="predict", unit="img", every_s=0.0)) == [0, 1, 2]
    lines = capsys.readouterr().err.splitlines()
    # every_s=0: one line per item, then the summary line
    assert [line.split(" in ")[0] for line in lines] == [
        "predict: 1/3 img", "predict: 2/3 img", "predict: 3/3 img", "predict: 3/3 img"]


def test_disabled_or_unsized(capsys: pytest.CaptureFixture[str]) -> None:
    assert list(progress(range(2), desc="x", enabled=False)) == [0, 1]
    assert capsys.readouterr().err == ""
    assert list(progress(iter("ab"), desc="y", every_s=3600)) == ["a", "b"]
    assert capsys.readouterr().err.startswith("y: 2 it in ")
