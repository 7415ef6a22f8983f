"""The keypoint head passes plugrcnn's conformance checks (one test per step), on the kit's
stick figures (11 keypoints, label 4)."""
from __future__ import annotations

from plugrcnn.testing import SYNTHETIC_KEYPOINTS, HeadCheck, parametrize_head_checks


@parametrize_head_checks("keypoint", config={**SYNTHETIC_KEYPOINTS, "num_conv": 2, "conv_dim": 16,
                                             "export_max_roi_size": 128})
def test_conformance(head_check: HeadCheck) -> None:
    head_check()
