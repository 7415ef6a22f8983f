"""The box head passes plugrcnn's conformance checks (one test per step)."""
from __future__ import annotations

from plugrcnn.testing import HeadCheck, parametrize_head_checks


@parametrize_head_checks("box")
def test_conformance(head_check: HeadCheck) -> None:
    head_check()
