"""The exact keypoint decode picks candidate cells with a top-k; the pick must equal the first k
of a stable descending sort (ties in cell order), which decides which of two equal pixels wins."""
from __future__ import annotations

import torch

from plugrcnn_keypoint.decode import best_cells


def test_best_cells_equals_a_stable_descending_sort_with_ties_infinities_and_nan() -> None:
    gen = torch.Generator().manual_seed(0)
    for trial in range(300):
        rows = int(torch.randint(1, 20, (1,), generator=gen))
        cells = int(torch.randint(1, 60, (1,), generator=gen))
        k = int(torch.randint(1, cells + 1, (1,), generator=gen))
        if trial % 3 == 0:
            bounds = torch.randn(rows, cells, generator=gen)
        else:  # few distinct values: ties straddle the k-th place
            bounds = torch.randint(0, 5, (rows, cells), generator=gen).float()
        if trial % 7 == 0:
            bounds[bounds < 1] = float("-inf")  # cells with no pixel
        if trial % 50 == 0:
            bounds[0, 0] = float("nan")
        expected = torch.sort(bounds, dim=1, descending=True, stable=True).indices[:, :k]
        assert torch.equal(best_cells(bounds, k), expected), f"trial {trial}, k={k}"
