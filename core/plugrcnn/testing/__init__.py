"""Testing kit for head authors: the conformance checks a head plugin runs in its own tests.

    from plugrcnn.testing import parametrize_head_checks

    @parametrize_head_checks("my_head", config={...}, heads={"other_head": {...}})
    def test_conformance(head_check):
        head_check()

See `plugrcnn.testing.conformance` for the steps and docs/writing-a-head.md for a tutorial.
"""
from __future__ import annotations

from plugrcnn.testing.conformance import (
    STEPS,
    ConformanceError,
    HeadCheck,
    check_head,
    head_checks,
    parametrize_head_checks,
)
from plugrcnn.testing.workbench import SYNTHETIC_KEYPOINTS

__all__ = ["STEPS", "SYNTHETIC_KEYPOINTS", "ConformanceError", "HeadCheck", "check_head", "head_checks",
           "parametrize_head_checks"]
