"""faster-coco-eval (the default backend) gives pycocotools' AP, on bbox, segm and keypoints."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from plugrcnn.data.synthetic import generate_synthetic_coco
from plugrcnn.evaluation.coco_evaluator import coco_from_dict, evaluate_records
from plugrcnn.testing.coco_results import perturbed_results

ROOT = Path(__file__).resolve().parents[2]
SIGMAS = yaml.safe_load((ROOT / "configs/demo/synthetic_keypoints.yaml").read_text()
                        )["model"]["heads"]["keypoint"]["oks_sigmas"]


@pytest.fixture(scope="module")
def ground_truth(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The synthetic data set's validation GT (shapes with masks, stick figures with keypoints)."""
    import json

    root = tmp_path_factory.mktemp("synthetic_eval")
    generate_synthetic_coco(root, seed=11, num_train=1, num_val=40, image_size=96)
    return json.loads((root / "annotations" / "instances_val.json").read_text())


@pytest.mark.parametrize("kind", ["bbox", "segm", "keypoints"])
def test_faster_backend_equals_pycocotools(ground_truth: dict[str, Any], kind: str) -> None:
    records = perturbed_results(ground_truth, seed=5)
    params = {"kpt_oks_sigmas": SIGMAS} if kind == "keypoints" else {}
    cat_ids = ([c["id"] for c in ground_truth["categories"] if c.get("keypoints")]
               if kind == "keypoints" else None)
    metrics, evaluators = {}, {}
    for backend in ("pycocotools", "faster-coco-eval"):
        keep: dict[str, Any] = {}
        gt = coco_from_dict(ground_truth, backend)
        metrics[backend] = evaluate_records(gt, records, kind, params, cat_ids, backend, keep)
        evaluators[backend] = keep["evaluator"]
    reference, faster = metrics["pycocotools"], metrics["faster-coco-eval"]
    assert 0.2 < reference["AP"] < 0.95, reference  # a test of matching, not of all-or-nothing
    assert reference.keys() == faster.keys()
    for name in reference:
        assert faster[name] == pytest.approx(reference[name], abs=1e-6), name
    # the precision table the plots read agrees too
    np.testing.assert_allclose(np.asarray(evaluators["faster-coco-eval"].eval["precision"]),
                               np.asarray(evaluators["pycocotools"].eval["precision"]), atol=1e-6)
