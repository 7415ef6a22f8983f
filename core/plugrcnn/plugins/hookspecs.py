"""Every hook plugrcnn calls, grouped by phase. Plugins implement them with `@hookimpl`.

Hooks run at build time and around `forward`, never inside it: a head's `forward` sees tensors
only, so tracing, torch.compile and ONNX/TensorRT export work on every head.

Unless a hook says "stops at the first non-None result" (firstresult), every implementation is
called and the results are collected in a list (last registered first).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

import pluggy

if TYPE_CHECKING:
    import torch

    from plugrcnn.config.schema import Config
    from plugrcnn.backbones.spec import BackboneSpec
    from plugrcnn.data.formats import DatasetFormat
    from plugrcnn.heads.spec import HeadSpec

hookspec = pluggy.HookspecMarker("plugrcnn")
hookimpl = pluggy.HookimplMarker("plugrcnn")


# -- registration (build time) -----------------------------------------------------------------

@hookspec
def plugrcnn_register_heads() -> Iterable[HeadSpec]:
    """Yield the heads this plugin provides.

    Called once per plugin manager, right after the plugins named in the config are loaded from
    the ``plugrcnn.heads`` entry-point group and before any model is built.

    :return: an iterable of :class:`~plugrcnn.heads.HeadSpec` records. Two records with
        the same name (from one or two distributions) are an error naming both.
    """


@hookspec
def plugrcnn_register_dataset_formats() -> Iterable[DatasetFormat]:
    """Yield the data set formats this plugin can load (``data.format: <name>``).

    Called when a config is loaded (to check ``data.format``) and when a split is loaded, for
    the plugins of the ``plugrcnn.dataset_formats`` entry-point group; COCO is built in.

    :return: an iterable of :class:`~plugrcnn.data.formats.DatasetFormat` records; a name
        registered twice is an error.
    """


@hookspec
def plugrcnn_register_backbones() -> Iterable[BackboneSpec]:
    """Yield the backbones this plugin provides.

    Called when a config is loaded (for the backbone ``model.backbone.name`` selects) and by
    ``plugrcnn backbones``, after the plugin is loaded from the ``plugrcnn.backbones``
    entry-point group; the built-in backbones answer it too.

    :return: an iterable of :class:`~plugrcnn.backbones.BackboneSpec` records. Two records with
        the same name (from one or two distributions) are an error naming both.
    """


# -- weights (build time) ----------------------------------------------------------------------

@hookspec
def plugrcnn_convert_weights(source: str, arch: str, state_dict: dict[str, torch.Tensor],
                             head_names: tuple[str, ...]) -> dict[str, torch.Tensor] | None:
    """Translate a foreign checkpoint's parameters that belong to this plugin's heads.

    Called by ``plugrcnn convert <source>`` once per plugin; the core converts the backbone,
    RPN and shared trunks itself.

    :param source: the checkpoint family, e.g. ``"torchvision"``.
    :param arch: the architecture name within that family, e.g. ``"maskrcnn_resnet50_fpn"``.
    :param state_dict: the foreign state dict (read only).
    :param head_names: the heads enabled by the target config.
    :return: ``{plugrcnn key: tensor}`` for the keys this plugin claims, or None. For
        ``source="detectron2"`` it must be a :class:`plugrcnn.convert.ConvertedWeights`, whose
        ``sources`` name the foreign keys used (every source key must be used or dropped).
    """


# -- training (the criterion step, after the model's forward) ----------------------------------

@hookspec
def plugrcnn_extra_losses(head_name: str, outputs: dict[str, torch.Tensor], rois: list[Any],
                          targets: list[Any]) -> dict[str, torch.Tensor] | None:
    """Add loss terms for a head, after that head's own loss in a training step.

    Called by the criterion (``plugrcnn.engine.losses.DetectorCriterion``), outside the model's
    ``forward``, once per enabled head per step. Returned terms are weighted like every other
    loss, by ``model.loss_weights``.

    :param head_name: the head whose outputs these are.
    :param outputs: the head's forward outputs on its training RoIs.
    :param rois: per image, the :class:`~plugrcnn.modeling.sampler.SampledRoIs` the head ran on.
    :param targets: per image, the :class:`~plugrcnn.heads.targets.ImageTargets`.
    :return: named losses (names start with ``loss_``), or None.
    """


@hookspec(firstresult=True)
def plugrcnn_reduce_losses(losses: dict[str, torch.Tensor],
                           weights: dict[str, float]) -> torch.Tensor | None:
    """Reduce the named losses of a training step into the scalar that is back-propagated.

    Called once per training step, by the criterion. Stops at the first non-None result; the
    default, used when no plugin answers, is ``sum(weights.get(name, 1.0) * loss)``
    (``plugrcnn.engine.losses.weighted_sum``).

    :param losses: every named loss of the step, unweighted (RPN, heads, extra losses).
    :param weights: ``model.loss_weights`` from the config: the one place loss weights are set.
    :return: a scalar tensor, or None to leave it to the next implementation.
    """


# -- export (build time of the deploy graph) ---------------------------------------------------

@hookspec
def plugrcnn_modify_onnx_graph(model_proto: Any, config: Config) -> None:
    """Edit the exported ONNX graph in place, after export and before checking.

    :param model_proto: the ``onnx.ModelProto`` that is about to be saved.
    :param config: the model's config.
    """


@hookspec
def plugrcnn_configure_tensorrt_builder(builder_config: Any, network: Any, config: Config) -> None:
    """Adjust the TensorRT builder configuration before the engine is built.

    :param builder_config: the ``tensorrt.IBuilderConfig`` (precision flags, memory pool limits).
    :param network: the parsed ``tensorrt.INetworkDefinition``.
    :param config: the model's config.
    """
