"""Training: the Trainer loop, its hooks, checkpoints, the solver, distributed helpers."""
import plugrcnn.cpu_flags  # noqa: F401  (before any torch op: see that module)
