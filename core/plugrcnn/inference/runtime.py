"""How a model runs at inference: precision (exact fp32, or fast: bf16/fp16 autocast), model-wide
rewrites that keep fp32 (frozen batch norm folded into the conv before it), thread count.

The rewrites walk modules generically: a FrozenBatchNorm2d / eval BatchNorm2d whose input is, in
a traced forward of the backbone, exactly the output of a Conv2d is folded into that conv
(w' = w * g / sqrt(v + eps), b' = (b - m) * g / sqrt(v + eps) + beta) and replaced by an
identity. The backbone's features are compared before and after on the traced input; if a conv's
output was also read elsewhere (so folding changed what that reader sees), nothing is folded.
Folding changes fp32 rounding only (~1e-6 relative).
"""
from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from plugrcnn.cpu_flags import cpu_supports_bf16

Precision = Literal["exact", "fast"]
PRECISIONS = ("exact", "fast")


def physical_cores() -> int:
    """Physical cores this process may run on (hyper-threads share a core's vector units)."""
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return allowed
    cores, physical = set(), "0"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "physical id":
            physical = value.strip()
        elif key.strip() == "core id":
            cores.add((physical, value.strip()))
    return max(1, min(allowed, len(cores) or allowed))


def configure_threads(threads: int) -> int:
    """Intra-op threads for torch; returns the number set."""
    torch.set_num_threads(max(1, int(threads)))
    return torch.get_num_threads()


def autocast_dtype(precision: Precision, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of `precision` on `device`, or None (fp32)."""
    if precision != "fast":
        return None
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and cpu_supports_bf16():
        return torch.bfloat16
    return None


@contextlib.contextmanager
def inference_context(precision: Precision, device: torch.device) -> Iterator[None]:
    """no_grad, and in fast mode autocast to the device's fast dtype."""
    dtype = autocast_dtype(precision, device)
    autocast = contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)
    with torch.no_grad(), autocast:
        yield


class InferenceRuntime:
    """What a model runs with at inference: its precision and, while `applied()`, its backbone's
    batch norms folded into the convs before them (with channels_last weights, so the backbone
    runs channels_last). Outside `applied()` the model is untouched: its state dict, training
    and export see the original modules. Costs a second copy of the folded convs' weights."""

    def __init__(self, model: nn.Module, precision: Precision, device: torch.device,
                 fold: bool | None = None, channels_last: bool = True) -> None:
        # fold: default in fast mode only. Folding rounds differently (~1e-6 relative), enough
        # to swap two near-tied detections at the per-image cut on the parity tests' random
        # weights, so exact mode keeps torchvision's op order and bit-identical outputs.
        fold = precision == "fast" if fold is None else fold
        self.precision = precision
        self.device = device
        if precision == "fast" and autocast_dtype(precision, device) is None:
            warnings.warn(f"model.precision=fast: no fast dtype on this {device.type} (the CPU "
                          f"lacks bf16 instructions); running fp32", stacklevel=2)
        backbone = getattr(model, "backbone", None)
        self.folds: list[_Fold] = []
        if fold and isinstance(backbone, nn.Module):
            self.folds = fold_batch_norms(backbone, device, channels_last=channels_last)

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """The rewrites in place, under no_grad and the precision's autocast."""
        for f in self.folds:
            f.apply()
        try:
            with inference_context(self.precision, self.device):
                yield
        finally:
            for f in self.folds:
                f.remove()


def _is_foldable_norm(module: nn.Module) -> bool:
    return isinstance(module, FrozenBatchNorm2d) or (
        isinstance(module, nn.BatchNorm2d) and not module.training and module.track_running_stats
        and module.running_mean is not None)


def _trace_pairs(module: nn.Module, sample: torch.Tensor) -> list[tuple[nn.Conv2d, nn.Module]]:
    """(conv, norm) pairs where the norm's input is the conv's output, in a forward of `sample`."""
    # id -> (conv, its output); the outputs are kept alive so that no id is reused in the trace
    produced: dict[int, tuple[nn.Conv2d, torch.Tensor]] = {}
    pairs: list[tuple[nn.Conv2d, nn.Module]] = []

    def after_conv(conv: nn.Module, args: tuple, out: torch.Tensor) -> None:
        produced[id(out)] = (conv, out)

    def before_norm(norm: nn.Module, args: tuple) -> None:
        found = produced.get(id(args[0]))
        if found is not None and found[1] is args[0]:
            pairs.append((found[0], norm))

    hooks = []
    for sub in module.modules():
        if isinstance(sub, nn.Conv2d) and sub.groups == 1 and sub.padding_mode == "zeros":
            hooks.append(sub.register_forward_hook(after_conv))
        elif _is_foldable_norm(sub):
            hooks.append(sub.register_forward_pre_hook(before_norm))
    try:
        with torch.no_grad():
            module(sample)
    finally:
        for hook in hooks:
            hook.remove()
    distinct = list({(id(c), id(n)): (c, n) for c, n in pairs}.values())
    convs = [id(c) for c, _ in distinct]
    norms = [id(n) for _, n in distinct]
    # a module called twice with different partners cannot be folded into either
    return [(c, n) for c, n in distinct if convs.count(id(c)) == 1 and norms.count(id(n)) == 1]


class _Fold:
    """One conv + norm pair folded while applied: the conv runs with w' and b', the norm is an
    identity (both through instance `forward` attributes, removed afterwards). w' and b' are
    recomputed when the conv's or the norm's tensors have changed (training between calls)."""

    def __init__(self, conv: nn.Conv2d, norm: nn.Module, channels_last: bool) -> None:
        self.conv, self.norm, self.channels_last = conv, norm, channels_last
        self.key: tuple = ()
        self.weight = self.bias = torch.empty(0)

    def _sources(self) -> list[torch.Tensor]:
        norm = self.norm
        return [t for t in (self.conv.weight, self.conv.bias, norm.weight, norm.bias,
                            norm.running_mean, norm.running_var) if t is not None]

    def _refresh(self) -> None:
        key = tuple((t.data_ptr(), t._version) for t in self._sources())
        if key == self.key:
            return
        conv, norm = self.conv, self.norm
        with torch.no_grad():
            weight = norm.weight if norm.weight is not None else torch.ones_like(norm.running_mean)
            bias = norm.bias if norm.bias is not None else torch.zeros_like(norm.running_mean)
            scale = weight * (norm.running_var + norm.eps).rsqrt()  # (C,)
            shift = bias - norm.running_mean * scale
            folded = conv.weight * scale.view(-1, 1, 1, 1)
            if self.channels_last:
                folded = folded.contiguous(memory_format=torch.channels_last)
            self.weight = folded.detach()
            self.bias = (shift if conv.bias is None else conv.bias * scale + shift).detach()
        self.key = key

    def apply(self) -> None:
        self._refresh()
        conv, weight, bias = self.conv, self.weight, self.bias
        conv.forward = lambda x: conv._conv_forward(x, weight, bias)
        self.norm.forward = _identity

    def remove(self) -> None:
        for module in (self.conv, self.norm):
            module.__dict__.pop("forward", None)


def fold_batch_norms(module: nn.Module, device: torch.device, sample_size: int = 64,
                     channels_last: bool = True) -> list[_Fold]:
    """The folds of every traced (conv -> norm) pair of `module` (an image -> features module);
    none when folding would change the features."""
    sample = torch.rand(1, 3, sample_size, sample_size, device=device)
    pairs = _trace_pairs(module, sample)
    folds = [_Fold(conv, norm, channels_last) for conv, norm in pairs]
    if not folds:
        return []
    with torch.no_grad():
        before = module(sample)
        for f in folds:
            f.apply()
        try:
            after = module(sample)
        finally:
            for f in folds:
                f.remove()
    return folds if _same_outputs(before, after) else []


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _same_outputs(a: object, b: object) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and torch.allclose(a, b, rtol=1e-3, atol=1e-3 * float(a.abs().max()) + 1e-6)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_outputs(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_outputs(a[k], b[k]) for k in a)
    return False
