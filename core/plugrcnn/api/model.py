"""`plugrcnn.load(...)`: a model you call on images, and train / evaluate / export like the CLI."""
from __future__ import annotations

import contextlib
import functools
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator, Mapping, Sequence

import torch

from plugrcnn.api.inputs import ImageLike, is_batch, to_image_tensor
from plugrcnn.api.resolve import resolve
from plugrcnn.api.results import Result
from plugrcnn.config import load_config
from plugrcnn.config.schema import Config
from plugrcnn.errors import PlugrcnnError
from plugrcnn.inference.predictor import Predictor

Overrides = Sequence[str] | Mapping[str, Any] | None


def load(config: str | Path, weights: str | Path | None = None, device: str | None = None,
         overrides: Overrides = None, fast: bool = False) -> Model:
    """A model from a config (a YAML path, or a zoo name such as ``tv:maskrcnn_resnet50_fpn``,
    which brings its weights) and weights (a path, an https:// URL or a zoo name).

    `device`: "cpu", "cuda", "cuda:N" (default: the config's ``model.device``, "auto").
    `overrides`: ``["model.detection.score_thresh=0.3"]`` or ``{"model.detection.score_thresh": 0.3}``,
    as on the command line. `fast`: ``model.precision=fast`` (bf16 autocast on CPUs with bf16
    instructions, fp16 on CUDA; boxes within ~1 px of fp32). Without `weights` the model keeps its seeded initial weights (to train).
    """
    opts = _override_list(overrides)
    if fast:
        opts.append("model.precision=fast")
    if device is not None:
        opts.append(f"model.device={device}")
    config_path, weights_path = resolve(config, weights)
    return Model(load_config(config_path, opts), weights_path, config_path, opts)


def _override_list(overrides: Overrides) -> list[str]:
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return [f"{key}={json.dumps(value)}" for key, value in overrides.items()]  # JSON is YAML
    return [str(o) for o in overrides]


class Model:
    """Call it on one image or a list (paths, numpy HxWx3 uint8 arrays, PIL images, tensors):
    one `Result`, or a list of them. Images are run `batch_size` at a time."""

    def __init__(self, cfg: Config, weights: Path | None, config_path: Path | None = None,
                 overrides: list[str] | None = None) -> None:
        self._load(cfg, weights, config_path, overrides or [])

    def _load(self, cfg: Config, weights: Path | None, config_path: Path | None,
              overrides: list[str]) -> None:
        self.cfg = cfg
        self.weights = weights
        self.config_path = config_path
        self.overrides = list(overrides)
        # without weights: the initial model training would start from (solver.seed), leaving
        # the caller's random state as it was
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.solver.seed)
            self.predictor = Predictor.from_config(cfg, None if weights is None else str(weights))

    @property
    def device(self) -> torch.device:
        return self.predictor.device

    @property
    def heads(self) -> list[str]:
        return list(self.predictor.model.heads)

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.cfg.model.class_names)

    def __repr__(self) -> str:
        return (f"Model({self.config_path or 'config'}, weights={self.weights}, heads={self.heads}, "
                f"device={self.device})")

    @torch.inference_mode()
    def __call__(self, images: ImageLike | Sequence[ImageLike], batch_size: int = 4) -> Result | list[Result]:
        batch = is_batch(images)
        items = list(images) if batch else [images]
        if batch_size < 1:
            raise PlugrcnnError(f"batch_size must be at least 1, got {batch_size}")
        # read every input first: a bad one fails before any compute
        inp = self.cfg.model.input
        tensors = [to_image_tensor(item, _describe(item, i), inp.max_image_pixels,
                                   (inp.min_size_test, inp.max_size_test)) for i, item in enumerate(items)]
        self.predictor.model.eval()
        results: list[Result] = []
        for start in range(0, len(tensors), batch_size):
            chunk = tensors[start:start + batch_size]
            with deferred_finalize(self.predictor.model.heads) as pending:
                detections = self.predictor(chunk)
            for offset, det in enumerate(detections):
                index = start + offset
                source = str(items[index]) if isinstance(items[index], (str, Path)) else None
                steps = [step for step in pending if step[1] is det]
                results.append(Result(chunk[offset], det, self.predictor, source,
                                      [(head, scale, size) for head, _, scale, size in steps]))
        return results if batch else results[0]

    # -- the CLI's jobs -------------------------------------------------------------------------------
    def train(self, output_dir: str | Path | None = None, resume: bool = False,
              overrides: Overrides = None) -> dict[str, Any]:
        """`plugrcnn train`: train on the config's training split (starting from this model's
        weights, if it has any), then load the final weights into this model."""
        from plugrcnn.engine.training import train_from_config

        opts = [*self.overrides, *_override_list(overrides)]
        if output_dir is not None:
            opts.append(f"output_dir={Path(output_dir)}")
        if self.weights is not None:
            opts.append(f"model.weights={self.weights}")
        cfg = load_config(self.config_path, opts) if self.config_path else self.cfg
        result = train_from_config(cfg, resume=resume)
        trained_dir = Path(cfg.output_dir)
        self._load(load_config(trained_dir / "config.yaml"), trained_dir / "model_final.pth",
                   trained_dir / "config.yaml", [])
        return result

    def evaluate(self, output_dir: str | Path | None = None, split: str = "val",
                 progress: bool = True) -> dict[str, dict[str, float]]:
        """`plugrcnn eval`: COCO metrics of every head's kind on the config's `split`; with
        `output_dir`, writes metrics.json, coco_results.json and the plots there."""
        from plugrcnn.data.build import load_split
        from plugrcnn.evaluation.coco_evaluator import evaluate

        from plugrcnn.outputs import prepare_output_dir

        if output_dir is not None:
            prepare_output_dir(Path(output_dir))  # before the long run, not after it
        dataset = load_split(self.cfg, split, training=False)
        return evaluate(self.predictor, dataset, None if output_dir is None else Path(output_dir),
                        progress=progress)

    def export(self, output: str | Path, format: str = "onnx", height: int | None = None,
               width: int | None = None, max_detections: int | None = None, fp16: bool = False,
               verify: bool = False, opset: int = 17) -> Path:
        """`plugrcnn export`: a fixed-size graph of this model (onnx | tensorrt | aoti); with
        `verify`, compared with PyTorch on synthetic images (an error if it differs; the file is
        kept for inspection, as the CLI keeps it)."""
        from plugrcnn_deploy.cli import export as cli_export
        from plugrcnn_deploy.cli.common import check_model_input, default_size
        from plugrcnn_deploy.export import export_model, synthetic_images
        from plugrcnn_deploy.formats.spec import DeploySpec

        if (height is None) != (width is None):
            raise PlugrcnnError("export: give both height and width, or neither")
        size = (height, width) if height is not None else default_size(self.cfg)
        check_model_input(self.predictor.model, size, "the model input")
        spec = DeploySpec(height=size[0], width=size[1], fp16=fp16,
                          max_detections=max_detections or self.cfg.model.detection.detections_per_image)
        output = Path(output)
        model = self.predictor.model
        export_model(model, spec, format, output, config=self.cfg, pm=self.predictor.built.registry.pm,
                     opset=opset)
        if verify:
            cli_export._verify(SimpleNamespace(format=format, output=output, fp16=fp16,
                                               delete_on_verify_failure=False),
                               model, self.device, synthetic_images(size))
        return output


@contextlib.contextmanager
def deferred_finalize(heads: Mapping[str, Any]) -> Iterator[list[tuple[Any, dict, Any, Any]]]:
    """Record the heads' `finalize` calls instead of running them (a `Result` runs them when a
    head's field is first read: a caller who reads boxes never pays for pasting masks). Yields the
    list of (head, detection, scale_xy, original_size), in call order."""
    pending: list[tuple[Any, dict, Any, Any]] = []
    for head in heads.values():
        head.finalize = functools.partial(_record, pending, head)  # instance attribute
    try:
        yield pending
    finally:
        for head in heads.values():
            del head.finalize  # the class's method again


def _record(pending: list, head: Any, detection: dict, scale_xy: Any, original_size: Any) -> None:
    pending.append((head, detection, scale_xy, original_size))


def _describe(item: Any, index: int) -> str:
    return str(item) if isinstance(item, (str, Path)) else f"image {index} ({type(item).__name__})"
