"""The MaskIoU head passes plugrcnn's conformance checks (one test per step)."""
from __future__ import annotations

from plugrcnn.testing import HeadCheck, parametrize_head_checks


@parametrize_head_checks("maskiou", config={"num_conv": 2, "conv_dim": 16, "fc_dim": 32},
                         heads={"mask": {"num_conv": 1, "conv_dim": 16}})
def test_conformance(head_check: HeadCheck) -> None:
    head_check()
