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
