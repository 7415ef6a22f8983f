"""The fixed-shape pieces of the deploy graph agree with the core's data-dependent ones."""
from __future__ import annotations

import io
import warnings

import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper
from torchvision.ops import batched_nms, box_iou

from deploy_fixtures import HEIGHT, WIDTH, Deployed, make_images
from plugrcnn.errors import PlugrcnnError
from plugrcnn.modeling.poolers import MultiLevelRoIAlign
from plugrcnn_deploy.formats.spec import DeploySpec
from plugrcnn_deploy.formats.tensorrt_ops import tensorrt_op_problems
from plugrcnn_deploy.graph.deploy_graph import DeployGraph
from plugrcnn_deploy.graph.onnx_static import static_problems
from plugrcnn_deploy.graph.static_ops import MASKED_SCORE, nms_rounds_needed, pool_static, static_nms_keep
from plugrcnn_deploy.video.frames import letterbox, letterbox_size, mean_fill


def _random_boxes(gen: torch.Generator, n: int, size: float = 200.0) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=gen) * size
    wh = torch.rand(n, 2, generator=gen) * size / 3 + 1
    return torch.cat([xy, xy + wh], dim=1)


class _NMSModule(torch.nn.Module):
    def __init__(self, rounds: int) -> None:
        super().__init__()
        self.rounds = rounds

    def forward(self, boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        return static_nms_keep(boxes, scores, groups, 0.5, self.rounds)


def _nms_case(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """15 clusters of 8 jittered boxes, plus a chain of 6 boxes each shifted 8 px from the last
    (neighbours overlap with IoU 0.58, next-but-one 0.30) with falling scores: greedy NMS keeps
    every other one, which takes the fixed-point iteration several rounds to find."""
    gen = torch.Generator().manual_seed(seed)
    centres = (torch.rand(15, 1, 2, generator=gen) * 150).expand(15, 8, 2)  # 8 boxes per object
    jitter = torch.rand(15, 8, 4, generator=gen) * 8
    clusters = (torch.cat([centres, centres + 30], dim=2) + jitter).reshape(120, 4)
    chain = torch.tensor([[200.0 + 8 * i, 200.0, 230.0 + 8 * i, 230.0] for i in range(6)])
    boxes = torch.cat([clusters, chain])[None]  # (1, T=126, 4)
    scores = torch.cat([torch.rand(120, generator=gen), torch.linspace(0.99, 0.9, 6)])[None]
    scores[0, :120:7] = MASKED_SCORE                        # candidates that must never be kept
    groups = torch.cat([torch.randint(0, 3, (120,), generator=gen), torch.zeros(6, dtype=torch.int64)])[None]
    return boxes, scores, groups


def _reference_keep(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    valid = torch.where(scores[0] >= 0)[0]
    kept = valid[batched_nms(boxes[0, valid], scores[0, valid], groups[0, valid], 0.5)]
    return torch.zeros(scores.shape[1], dtype=torch.bool).index_fill(0, kept, True)


def _export_nms(rounds: int) -> bytes:
    boxes, scores, groups = _nms_case(0)
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript-based exporter says it is deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(_NMSModule(rounds), (boxes, scores, groups), buffer, dynamo=False, opset_version=17,
                          input_names=["boxes", "scores", "groups"])
    return buffer.getvalue()


def test_static_nms_keeps_what_batched_nms_keeps_in_torch_and_in_onnxruntime() -> None:
    boxes, scores, groups = _nms_case(0)
    expected = _reference_keep(boxes, scores, groups)
    assert 10 < int(expected.sum()) < 100, "the case should suppress some boxes and keep others"
    assert torch.equal(_NMSModule(1)(boxes, scores, groups)[0], expected)  # eager: torchvision's greedy NMS
    rounds = max(nms_rounds_needed(*_nms_case(seed), 0.5) for seed in (0, 1, 2))
    assert rounds >= 4, "the chain should need more than Fast NMS's single round"
    data = _export_nms(rounds | 1)
    model = onnx.load_from_string(data)
    ops = {n.op_type for n in model.graph.node}
    assert "NonMaxSuppression" not in ops and "MatMul" in ops
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    for seed in (0, 1, 2):  # the graph holds no constants of the first case
        boxes, scores, groups = _nms_case(seed)
        (keep,) = session.run(None, {"boxes": boxes.numpy(), "scores": scores.numpy(), "groups": groups.numpy()})
        assert torch.equal(torch.from_numpy(keep)[0], _reference_keep(boxes, scores, groups))


def test_static_nms_with_too_few_rounds_keeps_a_subset_without_overlaps() -> None:
    boxes, scores, groups = _nms_case(1)
    expected = _reference_keep(boxes, scores, groups)
    session = ort.InferenceSession(_export_nms(1), providers=["CPUExecutionProvider"])  # Fast NMS
    (keep,) = session.run(None, {"boxes": boxes.numpy(), "scores": scores.numpy(), "groups": groups.numpy()})
    keep = torch.from_numpy(keep)[0]
    assert not torch.equal(keep, expected) and not bool((keep & ~expected).any())  # a strict subset
    kept = torch.where(keep)[0]
    iou = box_iou(boxes[0, kept], boxes[0, kept]) - torch.eye(len(kept))
    same_group = groups[0, kept][:, None] == groups[0, kept][None, :]
    assert float(iou[same_group].max()) <= 0.5


@pytest.mark.parametrize("aligned,sampling_ratio", [(True, 0), (False, 2)])
def test_static_pooling_equals_the_core_multilevel_roi_align(aligned: bool, sampling_ratio: int) -> None:
    gen = torch.Generator().manual_seed(3)
    scales = [1 / 4, 1 / 8, 1 / 16, 1 / 32]
    features = [torch.randn(2, 8, int(256 * s), int(320 * s), generator=gen) for s in scales]
    # boxes from 4 px to 300 px so that every level gets some
    sizes = torch.logspace(0.6, 2.45, 30)[:, None]
    xy = torch.rand(2, 30, 2, generator=gen) * 100
    boxes = torch.cat([xy, xy + sizes.expand(30, 2)[None]], dim=2)  # (N=2, R=30, 4)
    pooler = MultiLevelRoIAlign(output_size=7, scales=scales, sampling_ratio=sampling_ratio, aligned=aligned)
    expected = pooler(features, list(boxes.unbind(0)))
    torch.testing.assert_close(pool_static(pooler, features, boxes), expected, rtol=0, atol=1e-6)


def test_deploy_graph_in_eager_mode_gives_the_core_detections(deployed: Deployed) -> None:
    model = deployed.model
    graph = DeployGraph(model, DeploySpec(height=HEIGHT, width=WIDTH, max_detections=40))
    for image in make_images(2):
        reference = model.predict([image], resize=False)[0]
        with torch.no_grad():
            outputs = graph.forward_named(image[None])
        count = int(outputs["valid_count"][0])
        assert count == len(reference["pred_boxes"]) > 5
        assert torch.equal(outputs["classes"][0, :count].long(), reference["pred_classes"])
        torch.testing.assert_close(outputs["boxes"][0, :count], reference["pred_boxes"], rtol=0, atol=1e-4)
        torch.testing.assert_close(outputs["scores"][0, :count], reference["scores"], rtol=0, atol=1e-6)


def test_letterbox_keeps_the_aspect_ratio_and_fills_with_the_mean() -> None:
    assert letterbox_size((100, 200), (256, 320)) == (160, 320)
    assert letterbox_size((512, 320), (256, 320)) == (256, 160)
    frame = torch.full((3, 100, 200), 7, dtype=torch.uint8)
    fill = mean_fill((0.485, 0.456, 0.406))
    assert fill == (124, 116, 104)
    canvas, box = letterbox(frame, (256, 320), fill)
    assert canvas.shape == (3, 256, 320) and box.resized_size == (160, 320)
    assert int(canvas[:, :160].max()) == 7
    assert canvas[:, 160:, :].flatten(1).unique(dim=1).tolist() == [[124], [116], [104]]


def test_spec_round_trips_and_rejects_a_topk_tensorrt_cannot_build() -> None:
    spec = DeploySpec(height=256, width=320, max_detections=50)
    spec = spec.with_outputs(("boxes", "mask.pred_masks"), ("mask",))
    assert DeploySpec.from_json(spec.to_json(), "x") == spec
    assert spec.head_outputs("mask") == {"pred_masks": "mask.pred_masks"}
    with pytest.raises(PlugrcnnError, match="max-detections must be in 1..3839"):
        DeploySpec(height=256, width=320, max_detections=4000)


def test_tensorrt_op_check_names_the_op_the_parser_rejects() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [5000])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])
    k = helper.make_tensor("k", TensorProto.INT64, [1], [3900])
    nodes = [helper.make_node("Unique", ["x"], ["u"], name="unique_node"),
             helper.make_node("TopK", ["u", "k"], ["y", "i"], name="topk_node")]
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=[k])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    problems = tensorrt_op_problems(model)
    assert any("op Unique (node 'unique_node')" in p for p in problems)
    assert any("TopK (node 'topk_node') has K=3900" in p for p in problems)


def _nms_graph(candidates: int) -> onnx.ModelProto:
    boxes = helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, candidates, 4])
    scores = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 80, candidates])
    selected = helper.make_tensor_value_info("selected", TensorProto.INT64, [None, 3])
    limit = helper.make_tensor("limit", TensorProto.INT64, [1], [100])
    node = helper.make_node("NonMaxSuppression", ["boxes", "scores", "limit"], ["selected"], name="plugin_nms")
    graph = helper.make_graph([node], "g", [boxes, scores], [selected], initializer=[limit])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_tensorrt_op_check_names_an_nms_that_sees_more_boxes_than_tensorrt_allows() -> None:
    assert tensorrt_op_problems(_nms_graph(4819)) == []  # the R50 proposal count at 800x1344
    (problem,) = tensorrt_op_problems(_nms_graph(5001))
    assert "NonMaxSuppression (node 'plugin_nms') sees 5001 candidate boxes" in problem and "5000" in problem
    (problem,) = tensorrt_op_problems(_nms_graph(2500), nms_limit=2000)  # SM 5.3 / 6.2
    assert "node 'plugin_nms'" in problem and "2000" in problem


def test_tensorrt_op_check_wants_float_range_limits_constant() -> None:
    start = helper.make_tensor_value_info("start", TensorProto.FLOAT, [])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [None])
    inits = [helper.make_tensor("limit", TensorProto.FLOAT, [], [10.0]),
             helper.make_tensor("delta", TensorProto.FLOAT, [], [1.0])]
    node = helper.make_node("Range", ["start", "limit", "delta"], ["out"], name="float_range")
    model = helper.make_model(helper.make_graph([node], "g", [start], [out], initializer=inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    (problem,) = tensorrt_op_problems(model)
    assert "Range (node 'float_range') has float inputs that are not initializers" in problem


def test_static_check_names_a_tensor_with_a_symbolic_dimension() -> None:
    problems = static_problems(_nms_graph(100))
    assert any("NonMaxSuppression (node 'plugin_nms') has a data-dependent output shape" in p for p in problems)
    assert any("tensor 'selected' has no static shape" in p for p in problems)
