"""The third-party test head passes plugrcnn's conformance checks (one test per step)."""
from __future__ import annotations

from plugrcnn.testing import HeadCheck, parametrize_head_checks


@parametrize_head_checks("area", config={"hidden": 8})
def test_conformance(head_check: HeadCheck) -> None:
    head_check()
