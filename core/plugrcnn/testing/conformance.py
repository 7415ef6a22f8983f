"""The conformance checks every head runs in its own tests: one test id per step.

    from plugrcnn.testing import parametrize_head_checks

    @parametrize_head_checks("my_head", config={"hidden": 8})
    def test_conformance(head_check):
        head_check()

Steps, on a tiny model built from the installed plugins (see `workbench`):

build        the head is found by entry point, builds, and is a `plugrcnn.heads.Head`
train_step   one training step: the head's losses exist, are finite and differentiable, and every
             parameter of the head gets a gradient
empty_batch  an image without objects (zero RoIs for the head) trains with a finite loss still
             connected to every parameter, and a model with zero detections predicts, writes
             COCO records and draws
predict      every key of the head's ``predict`` reaches the detections as ``pred_<key>``, one row
             per detection; COCO records are JSON and one per detection
draw         drawing returns a uint8 image of the input's size
evaluate     ``plugrcnn eval``'s evaluator reports the head's kind (COCOeval or its own metric)
state_dict   a model loaded from the state dict predicts exactly the same
export       the ONNX graph has an output ``<head>.<key>`` for every ``predict`` key, and
             ``--verify`` (onnxruntime against PyTorch) passes

A failure raises `ConformanceError` naming the head and the step. Mature kits this follows:
scikit-learn's ``parametrize_with_checks``, pandas' extension tests.
"""
from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from plugrcnn.testing.workbench import HEIGHT, WIDTH, HeadUnderTest, Workbench

STEPS = ("build", "train_step", "empty_batch", "predict", "draw", "evaluate", "state_dict", "export")


class ConformanceError(AssertionError):
    """A head failed a conformance step; the message names the head and the step."""


@dataclass
class _State:
    bench: Workbench
    cfg: Any
    built: Any

    @property
    def head(self) -> Any:
        return self.built.model.heads[self.bench.subject.name]


_STATES: dict[HeadUnderTest, _State] = {}


def _state(subject: HeadUnderTest) -> _State:
    if subject not in _STATES:
        bench = Workbench(subject)
        cfg, built = bench.build()
        _STATES[subject] = _State(bench, cfg, built)
    return _STATES[subject]


@dataclass(frozen=True)
class HeadCheck:
    subject: HeadUnderTest
    step: str

    def __call__(self) -> None:
        try:
            state = _state(self.subject)
        except ConformanceError:
            raise
        except Exception as exc:
            raise ConformanceError(f"head '{self.subject.name}', step 'build': {type(exc).__name__}: {exc}") from exc
        try:
            CHECKS[self.step](state)
        except ConformanceError:
            raise
        except AssertionError as exc:
            raise ConformanceError(f"head '{self.subject.name}', step '{self.step}': {exc}") from exc
        except Exception as exc:
            if type(exc).__name__ in ("Skipped", "XFailed"):  # pytest.skip inside a step
                raise
            raise ConformanceError(f"head '{self.subject.name}', step '{self.step}': "
                                   f"{type(exc).__name__}: {exc}") from exc

    def __str__(self) -> str:
        return f"{self.subject.name}:{self.step}"


def head_checks(name: str, config: dict[str, Any] | None = None,
                heads: dict[str, dict[str, Any]] | None = None) -> list[HeadCheck]:
    """The checks of head `name` (with `config`; `heads`: configs of the other heads enabled)."""
    subject = HeadUnderTest.of(name, config, heads)
    return [HeadCheck(subject, step) for step in STEPS]


def check_head(name: str, config: dict[str, Any] | None = None,
               heads: dict[str, dict[str, Any]] | None = None, skip: tuple[str, ...] = ()) -> None:
    """Run every check in order (outside pytest); raises ConformanceError at the first failure."""
    for check in head_checks(name, config, heads):
        if check.step not in skip:
            check()


def parametrize_head_checks(name: str, config: dict[str, Any] | None = None,
                            heads: dict[str, dict[str, Any]] | None = None,
                            xfail: dict[str, str] | None = None) -> Callable[[Any], Any]:
    """``pytest.mark.parametrize("head_check", ...)``: one test id per step; `xfail` maps a step to
    the reason it is expected to fail (strict: it must fail)."""
    import pytest

    params = [pytest.param(check, id=str(check),
                           marks=[pytest.mark.xfail(reason=xfail[check.step], strict=True,
                                                    raises=ConformanceError)] if check.step in (xfail or {}) else [])
              for check in head_checks(name, config, heads)]
    return pytest.mark.parametrize("head_check", params)


# -- the steps -----------------------------------------------------------------------------------

def _check_build(state: _State) -> None:
    from plugrcnn.heads import Head

    assert isinstance(state.head, Head), f"built {type(state.head).__name__}, not a Head"
    assert state.head.name == state.bench.subject.name, f"the head calls itself {state.head.name!r}"


def _training_items(state: _State, empty: bool = False) -> list[dict[str, Any]]:
    from plugrcnn.data.build import load_split
    from plugrcnn.data.mapper import DatasetMapper
    from plugrcnn.heads import ImageTargets

    codecs = {n: c for n, h in state.built.model.heads.items() if (c := h.target_codec()) is not None}
    if empty:
        image = torch.rand(3, HEIGHT, WIDTH)
        heads = {n: c.read([], HEIGHT, WIDTH) for n, c in codecs.items()}
        return [{"image": image, "targets": ImageTargets(torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64),
                                                         torch.zeros(0, dtype=torch.bool), heads)}]
    dataset = load_split(state.cfg, "train", training=True, transform=DatasetMapper(codecs, None))
    return [dataset[i] for i in range(min(2, len(dataset)))]


def _head_losses(state: _State, batch: list[dict[str, Any]]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    name = state.bench.subject.name
    model = state.built.model.train()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(0)
    losses = state.built.criterion(model(batch))
    mine = {k: v for k, v in losses.items() if k == f"loss_{name}" or k.startswith(f"loss_{name}_")}
    assert mine, f"no loss named loss_{name}[_term] among {sorted(losses)}"
    for key, value in mine.items():
        assert value.dim() == 0, f"{key} has shape {tuple(value.shape)}; a loss is a scalar"
        assert torch.isfinite(value).item(), f"{key} is {float(value)}"
        assert value.requires_grad and value.grad_fn is not None, \
            f"{key} is not differentiable (no grad_fn): it does not depend on the head's parameters"
    total = sum(losses.values())
    total.backward()
    return mine, total


def _assert_every_parameter_has_a_gradient(state: _State) -> None:
    missing = [n for n, p in state.head.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient reaches {missing[:3]}; every parameter must be used by a loss"


def _check_train_step(state: _State) -> None:
    try:
        _head_losses(state, _training_items(state))
        _assert_every_parameter_has_a_gradient(state)
        params = [p for p in state.head.parameters() if p.grad is not None]
        assert any(bool(p.grad.abs().sum() > 0) for p in params), "every gradient of the head is zero"
    finally:
        state.built.model.eval()


def _check_empty_batch(state: _State) -> None:
    try:
        _head_losses(state, _training_items(state, empty=True))
        _assert_every_parameter_has_a_gradient(state)
    finally:
        state.built.model.eval()
    detection_cfg = state.built.model.cfg.detection
    score_thresh = detection_cfg.score_thresh
    detection_cfg.score_thresh = 2.0  # nothing scores that high: zero detections
    try:
        predictor = _predictor(state)
        image = (torch.rand(3, HEIGHT, WIDTH) * 255).to(torch.uint8)
        detection = predictor([image])[0]
        assert len(detection["pred_boxes"]) == 0
        for key in _predict_keys(state, detection):
            assert detection[key].shape[0] == 0, f"{key} has {detection[key].shape[0]} rows for 0 detections"
        assert predictor.coco_records(detection) == []
        drawn = predictor.draw(image, detection)
        assert drawn.shape == image.shape
    finally:
        detection_cfg.score_thresh = score_thresh


def _predictor(state: _State) -> Any:
    from plugrcnn.inference.predictor import Predictor

    return Predictor(state.cfg, state.built, torch.device("cpu"))


def _val_images(state: _State, count: int = 2) -> list[torch.Tensor]:
    from plugrcnn.data.build import load_split

    dataset = load_split(state.cfg, "val", training=False)
    return [dataset[i]["image"] for i in range(min(count, len(dataset)))]


def _predict_keys(state: _State, detection: dict[str, torch.Tensor]) -> list[str]:
    """The detection fields this head's predict wrote (run on the detections' rows again)."""
    from plugrcnn.heads import PredictContext, RoIRows

    model = state.built.model
    rows = RoIRows(boxes=torch.zeros(0, 4), classes=torch.zeros(0, dtype=torch.int64), scores=torch.zeros(0))
    outputs: dict[str, dict[str, torch.Tensor]] = {}
    model.roi_stage.runner.run_on_rows(list(model.heads.keys()), rows, _zero_features(model), outputs)
    fields = model.roi_stage.runner.predict_on_rows(rows, outputs, PredictContext())[state.bench.subject.name]
    return [f"pred_{key}" for key in fields]


def _zero_features(model: Any) -> Callable[[Any], torch.Tensor]:
    channels = model.backbone.pyramid.channels

    def pool(roi_input: Any) -> torch.Tensor:
        return model.roi_stage.pool_group(
            roi_input, lambda pooler: torch.zeros(0, channels, pooler.output_size, pooler.output_size))
    return pool


def _check_predict(state: _State) -> None:
    predictor = _predictor(state)
    for image in _val_images(state):
        detection = predictor([image])[0]
        count = len(detection["pred_boxes"])
        assert count > 0, "the tiny model gave no detections to check"
        keys = _predict_keys(state, detection)
        for key in keys:
            assert key in detection, f"predict() key {key[5:]!r} did not reach the detections as {key}"
            value = detection[key]
            assert value.shape[0] == count, f"{key} has {value.shape[0]} rows for {count} detections"
            if value.is_floating_point():
                assert bool(torch.isfinite(value).all()), f"{key} holds non-finite values"
        records = predictor.coco_records(detection, image_id=1)
        assert len(records) == count, f"{len(records)} COCO records for {count} detections"
        json.dumps(records, allow_nan=False)


def _check_draw(state: _State) -> None:
    predictor = _predictor(state)
    image = _val_images(state, 1)[0]
    detection = predictor([image])[0]
    drawn = predictor.draw(image, detection, score_thresh=0.0)
    assert isinstance(drawn, torch.Tensor) and drawn.dtype == torch.uint8, "draw() must return a uint8 tensor"
    assert drawn.shape == image.shape, f"drew a {tuple(drawn.shape)} image on a {tuple(image.shape)} one"


def _check_evaluate(state: _State) -> None:
    from plugrcnn.data.build import load_split
    from plugrcnn.evaluation.coco_evaluator import evaluate

    kind = state.head.eval_kind
    if kind is None:
        return
    results = evaluate(_predictor(state), load_split(state.cfg, "val", training=False), progress=False)
    assert kind in results, f"no metrics for kind {kind!r} (got {sorted(results)})"
    for metric, value in results[kind].items():
        assert isinstance(value, float) and (math.isfinite(value) or math.isnan(value)), f"{metric} = {value!r}"


def _check_state_dict(state: _State) -> None:
    buffer = io.BytesIO()
    torch.save(state.built.model.state_dict(), buffer)
    _, other = state.bench.build(seed=1)
    buffer.seek(0)
    other.model.load_state_dict(torch.load(buffer, weights_only=True))
    other.model.eval()
    images = _val_images(state, 1)
    with torch.no_grad():
        first = state.built.model.eval().predict(images)[0]
        second = other.model.predict(images)[0]
    assert set(first) == set(second), f"fields differ: {sorted(set(first) ^ set(second))}"
    for key in first:
        assert torch.equal(first[key], second[key]), f"{key} differs after the state dict round trip"


def _check_export(state: _State) -> None:
    import pytest

    try:
        from plugrcnn_deploy.export import export_model, verify_export
        from plugrcnn_deploy.formats.spec import DeploySpec
        from plugrcnn_deploy.runtimes import load_runtime
    except ImportError as exc:  # the deploy extras are not installed
        pytest.skip(f"export check needs plugrcnn's deploy extras ({exc})")
    pytest.importorskip("onnxruntime", reason="the export check runs the ONNX file with onnxruntime")
    model = state.built.model.eval()
    path = state.bench.root / f"{state.bench.subject.name}.onnx"
    spec = export_model(model, DeploySpec(height=HEIGHT, width=WIDTH, max_detections=10), "onnx", path,
                        config=state.cfg, pm=state.built.registry.pm)
    name = state.bench.subject.name
    wanted = {f"{name}.{key[len('pred_'):]}" for key in _predict_keys(state, {})}
    dropped = sorted(wanted - set(spec.outputs))
    assert not dropped, f"the exported graph has no output {dropped} (its outputs: {list(spec.outputs)})"
    runtime = load_runtime("onnxruntime", model, model_path=path, device=torch.device("cpu"))
    images = [(torch.rand(3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(i)) * 255).to(torch.uint8)
              for i in range(2)]
    report = verify_export(model, runtime, images + _val_images(state), fp16=False)
    assert report.ok, "--verify fails: " + "; ".join(report.problems)


CHECKS: dict[str, Callable[[_State], None]] = {
    "build": _check_build, "train_step": _check_train_step, "empty_batch": _check_empty_batch,
    "predict": _check_predict, "draw": _check_draw, "evaluate": _check_evaluate,
    "state_dict": _check_state_dict, "export": _check_export,
}
