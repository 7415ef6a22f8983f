"""The detector: backbone + FPN, RPN, the RoI stage and its plugin heads."""
import plugrcnn.cpu_flags  # noqa: F401  (before any torch op: see that module)
