"""Process-wide CPU flags (plugrcnn.cpu_flags) reach library users, not only the command line."""
from __future__ import annotations

import subprocess
import sys


def test_importing_plugrcnn_flushes_denormals_on_torchs_worker_threads(tmp_path):
    """The flag must be set before torch starts its threads: importing plugrcnn.api does it."""
    script = ("import numpy as np, torch\n"
              "torch.set_num_threads(2)\n"
              "x = torch.from_numpy(np.full(4_000_000, 1e-39, dtype=np.float32))  # denormal\n"
              "import plugrcnn.api\n"
              "print(int(((x * 1.0) != 0).sum()))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0"]
