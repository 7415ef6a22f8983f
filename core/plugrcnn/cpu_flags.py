"""The one place plugrcnn sets process-wide torch CPU flags: importing this module applies them.

Denormal floats are flushed to zero. Weights trained from scratch drift into denormals, and CPUs
handle those ~20x slower than normal floats. The flag is per thread; torch's intra-op worker
threads take it from the main thread when they start, i.e. at the first parallel op, so it must be
set before that: every entry point imports this module first. `plugrcnn.modeling` (which the
Python API, the Predictor, training, evaluation and export all import), `plugrcnn.engine` (the
Trainer on a model of your own) and the command line (`plugrcnn.cli.main`, before parsing).
"""
from __future__ import annotations

import torch

torch.set_flush_denormal(True)


def cpu_supports_bf16() -> bool:
    """bf16 matrix instructions (AVX512-BF16 or AMX): bf16 convs then beat fp32 on the CPU.

    Here, not in `inference.runtime`, so that the Trainer asks it without importing torchvision
    (a torchrun process of a model of your own then loads no torchvision extension)."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
