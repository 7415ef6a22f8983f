"""One seeded model for the deploy tests, its files on disk, and its ONNX export (built once)."""
from __future__ import annotations

import pytest

from deploy_fixtures import HEIGHT, WIDTH, Deployed, installed, make_model, write_config, write_weights
from plugrcnn.config import load_config
from plugrcnn.modeling.build import build_model
from plugrcnn.modeling.detector import TwoStageDetector
from plugrcnn_deploy.export import export_model
from plugrcnn_deploy.formats.spec import DeploySpec

# the third-party test head (tests/plugins/area_head) plus the built-in instance heads present
OPTIONAL_HEADS = ["area", "mask", "keypoint"]


@pytest.fixture(scope="session")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Deployed:
    folder = tmp_path_factory.mktemp("deploy")
    heads = [h for h in OPTIONAL_HEADS if installed(h)]
    config = write_config(folder, heads)
    model = make_model(config)
    weights = write_weights(model, folder / "weights.pth")
    spec = DeploySpec(height=HEIGHT, width=WIDTH, max_detections=40)
    written = export_model(model, spec, "onnx", folder / "model.onnx", config=load_config(config))
    return Deployed(folder, config, weights, folder / "model.onnx", model, heads, written)


@pytest.fixture
def fresh_model(deployed: Deployed) -> TwoStageDetector:
    """A model with the deployed weights that a test may move or change."""
    model = build_model(load_config(deployed.config)).model
    model.load_state_dict(deployed.model.state_dict())
    return model.eval()
