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


def cpu_supports_bf16() -> bool:
    """bf16 matrix instructions (AVX512-BF16 or AMX): bf16 convs then beat fp32 on the CPU."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


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
    with torch.no_grad(), torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        yield


def prepare_for_inference(model: nn.Module, precision: Precision, device: torch.device) -> nn.Module:
    """Fold batch norm into convs (in place) and warn if fast mode falls back to fp32."""
    if precision == "fast" and autocast_dtype(precision, device) is None:
        warnings.warn(f"model.precision=fast: no fast dtype on this {device.type} (the CPU lacks "
                      f"bf16 instructions); running fp32", stacklevel=2)
    backbone = getattr(model, "backbone", None)
    if isinstance(backbone, nn.Module):
        fold_batch_norms(backbone, device)
    return model


def _is_foldable_norm(module: nn.Module) -> bool:
    return isinstance(module, FrozenBatchNorm2d) or (
        isinstance(module, nn.BatchNorm2d) and not module.training and module.track_running_stats
        and module.running_mean is not None)


def _trace_pairs(module: nn.Module, sample: torch.Tensor) -> list[tuple[nn.Conv2d, nn.Module]]:
    """(conv, norm) pairs where the norm's input is the conv's output, in a forward of `sample`."""
    produced: dict[int, nn.Conv2d] = {}
    pairs: list[tuple[nn.Conv2d, nn.Module]] = []
    hooks = []
    for sub in module.modules():
        if isinstance(sub, nn.Conv2d) and sub.groups == 1 and sub.padding_mode == "zeros":
            hooks.append(sub.register_forward_hook(
                lambda m, args, out: produced.__setitem__(id(out), m)))
        elif _is_foldable_norm(sub):
            hooks.append(sub.register_forward_pre_hook(
                lambda m, args: pairs.append((produced[id(args[0])], m)) if id(args[0]) in produced else None))
    try:
        with torch.no_grad():
            outputs = module(sample)  # keeps every output alive: ids stay unique
    finally:
        for hook in hooks:
            hook.remove()
    del outputs
    seen_convs: set[int] = set()
    unique = []
    for conv, norm in pairs:  # a conv reused by two norms cannot be folded into both
        if id(conv) not in seen_convs:
            seen_convs.add(id(conv))
            unique.append((conv, norm))
    return unique


def _norm_affine(norm: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) of the norm as y = x * scale + shift, per channel."""
    weight = norm.weight if norm.weight is not None else torch.ones_like(norm.running_mean)
    bias = norm.bias if norm.bias is not None else torch.zeros_like(norm.running_mean)
    scale = weight * (norm.running_var + norm.eps).rsqrt()
    return scale, bias - norm.running_mean * scale


def fold_batch_norms(module: nn.Module, device: torch.device, sample_size: int = 64) -> int:
    """Fold every traced (conv -> norm) pair of `module` (an image -> features module); returns
    the number folded (0 when folding would change the features)."""
    sample = torch.rand(1, 3, sample_size, sample_size, device=device)
    pairs = _trace_pairs(module, sample)
    if not pairs:
        return 0
    with torch.no_grad():
        before = module(sample)
    saved = [(conv.weight.data, None if conv.bias is None else conv.bias.data) for conv, _ in pairs]
    forwards = []
    with torch.no_grad():
        for conv, norm in pairs:
            scale, shift = _norm_affine(norm)
            conv.weight.data = conv.weight.data * scale.view(-1, 1, 1, 1)
            bias = shift if conv.bias is None else conv.bias.data * scale + shift
            conv.bias = nn.Parameter(bias, requires_grad=False)
            forwards.append(norm.forward)
            norm.forward = _identity  # instance attribute: the module stays (state dict unchanged)
        after = module(sample)
    if _same_outputs(before, after):
        return len(pairs)
    with torch.no_grad():  # a conv output read by something else too: undo
        for (conv, norm), (weight, bias), forward in zip(pairs, saved, forwards):
            conv.weight.data = weight
            conv.bias = None if bias is None else nn.Parameter(bias)
            norm.forward = forward
    return 0


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
