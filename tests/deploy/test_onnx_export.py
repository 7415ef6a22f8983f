"""The exported ONNX graph: standard ops TensorRT parses, and onnxruntime gives PyTorch's detections."""
from __future__ import annotations

import collections

import onnx
import pytest
import torch

from deploy_fixtures import HEIGHT, WIDTH, Deployed, make_images
from plugrcnn.modeling.detector import TwoStageDetector
from plugrcnn_deploy.export import verify_export
from plugrcnn_deploy.formats.tensorrt_ops import tensorrt_op_problems
from plugrcnn_deploy.graph.onnx_static import static_problems
from plugrcnn_deploy.runtimes import load_runtime
from plugrcnn_deploy.verify import FP32_LIMITS, Comparison, compare_image, field_checks, judge


@pytest.fixture(scope="module")
def onnx_model(deployed: Deployed) -> onnx.ModelProto:
    return onnx.load(str(deployed.onnx))


def test_onnx_graph_passes_the_checker_and_the_tensorrt_op_check(onnx_model: onnx.ModelProto) -> None:
    onnx.checker.check_model(onnx_model, full_check=True)
    assert tensorrt_op_problems(onnx_model) == []
    opset = next(o.version for o in onnx_model.opset_import if o.domain in ("", "ai.onnx"))
    assert opset >= 17


def test_onnx_graph_uses_standard_roialign_and_a_static_nms(onnx_model: onnx.ModelProto) -> None:
    ops = collections.Counter(n.op_type for n in onnx_model.graph.node)
    assert ops["NonMaxSuppression"] == 0 and ops["MatMul"] > 0  # NMS is the static IoU-matrix one
    assert ops["RoiAlign"] >= 4            # one per pyramid level and pooler resolution
    assert not any(n.domain not in ("", "ai.onnx") for n in onnx_model.graph.node)
    for node in onnx_model.graph.node:
        if node.op_type == "RoiAlign":
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            assert attrs["coordinate_transformation_mode"] == b"half_pixel"  # the config's aligned=True
            assert attrs["sampling_ratio"] == 0
            assert attrs["spatial_scale"] in (0.25, 0.125, 0.0625, 0.03125)


def test_onnx_graph_is_fully_static(onnx_model: onnx.ModelProto) -> None:
    """No symbolic or unknown dimension after ONNX shape inference, no data-dependent op, no
    shape computation left (every Shape chain is folded), and no Constant node (initializers)."""
    inferred = onnx.shape_inference.infer_shapes(onnx_model, data_prop=True)
    values = {v.name: v for v in (*inferred.graph.value_info, *inferred.graph.output)}
    produced = [name for node in inferred.graph.node for name in node.output if name]
    assert len(produced) > 500
    for name in produced:
        dims = values[name].type.tensor_type.shape.dim
        assert all(d.HasField("dim_value") for d in dims), f"{name} is not static"
    ops = {n.op_type for n in onnx_model.graph.node}
    assert not ops & {"NonMaxSuppression", "NonZero", "Unique", "Compress", "Loop", "If", "Shape", "Constant"}
    assert static_problems(onnx_model) == []


def test_onnx_io_is_fixed_size_and_names_each_heads_outputs(deployed: Deployed,
                                                            onnx_model: onnx.ModelProto) -> None:
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in onnx_model.graph.output}
    assert shapes["boxes"] == [1, 40, 4] and shapes["scores"] == [1, 40] and shapes["valid_count"] == [1]
    (image_input,) = onnx_model.graph.input
    assert [d.dim_value for d in image_input.type.tensor_type.shape.dim] == [1, 3, HEIGHT, WIDTH]
    assert image_input.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert tuple(shapes) == deployed.spec.outputs
    if "mask" in deployed.heads:
        assert shapes["mask.masks"][:2] == [1, 40] and shapes["mask.masks"][-1] == 28


def test_a_third_party_head_exports_through_the_contract(deployed: Deployed, onnx_model: onnx.ModelProto) -> None:
    if "area" not in deployed.heads:
        pytest.skip("test head not installed: pip install --no-deps -e tests/plugins/area_head")
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in onnx_model.graph.output}
    assert shapes["area.area"] == [1, 40]  # AreaHead.predict -> {"area": (D,)}, one row per slot
    runtime = load_runtime("onnxruntime", deployed.model, model_path=deployed.onnx, device=torch.device("cpu"))
    image = make_images(1, seed=4)[0]
    reference = deployed.model.predict([image], resize=False)[0]["pred_area"]
    torch.testing.assert_close(runtime.infer([image])[0]["pred_area"], reference, rtol=1e-4, atol=1e-3)


def test_onnxruntime_matches_pytorch(deployed: Deployed) -> None:
    runtime = load_runtime("onnxruntime", deployed.model, model_path=deployed.onnx, device=torch.device("cpu"))
    result = Comparison()
    for image in make_images(3, seed=1):
        reference = deployed.model.predict([image], resize=False)[0]
        candidate = runtime.infer([image])[0]
        assert len(reference["pred_boxes"]) > 5, "the fixture should give detections to compare"
        assert torch.equal(candidate["pred_classes"], reference["pred_classes"])
        compare_image(reference, candidate, result, strict=True, checks=field_checks(deployed.model.heads))
    assert judge(result, FP32_LIMITS) == []
    assert result.max_box_diff <= 0.05
    if "mask" in deployed.heads:
        assert result.mask_iou is not None and result.mask_iou >= 0.98
    if "keypoint" in deployed.heads:
        assert result.max_keypoint_distance is not None and result.max_keypoint_distance <= 1.0


def test_frames_of_another_size_are_letterboxed_and_mapped_back(deployed: Deployed) -> None:
    runtime = load_runtime("onnxruntime", deployed.model, model_path=deployed.onnx, device=torch.device("cpu"))
    small = make_images(1, size=(128, 160), seed=2)[0]  # half size: the canvas is the frame x 2
    upscaled = torch.nn.functional.interpolate(small[None].float(), size=(HEIGHT, WIDTH), mode="bilinear",
                                               align_corners=False)[0].round().to(torch.uint8)
    detection = runtime.infer([small])[0]
    reference = runtime.infer([upscaled])[0]
    assert torch.equal(detection["pred_classes"], reference["pred_classes"])
    torch.testing.assert_close(detection["pred_boxes"] * 2, reference["pred_boxes"], rtol=0, atol=1e-3)
    if "mask" in deployed.heads:
        assert detection["pred_masks"].shape[-2:] == (128, 160)


def test_verify_reports_pass_and_catches_a_wrong_model(deployed: Deployed,
                                                       fresh_model: TwoStageDetector) -> None:
    runtime = load_runtime("onnxruntime", deployed.model, model_path=deployed.onnx, device=torch.device("cpu"))
    report = verify_export(deployed.model, runtime, make_images(1, seed=3), fp16=False)
    assert report.ok, report.problems
    with torch.no_grad():  # the exported file no longer matches this model
        fresh_model.roi_stage.heads["box"].bbox_pred.bias.add_(0.5)
    report = verify_export(fresh_model, runtime, make_images(1, seed=3), fp16=False)
    assert not report.ok and any("box difference" in p for p in report.problems)
