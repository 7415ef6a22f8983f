"""The training data order: an endless, seeded, epoch-shuffled index stream that can restart anywhere.

The stream is global: position p (0, 1, 2, ...) holds dataset index `perm_e[p % N]` with
e = p // N and perm_e a permutation drawn from (seed, e). Step i consumes positions
[i * B, (i + 1) * B) for B = ims_per_batch (all ranks together); rank r of W takes the positions
congruent to r modulo W. Hence the images of a step do not depend on how many processes share
it, and restarting at position i * B continues exactly where an uninterrupted run would be.

Augmentation randomness follows the same rule: each sample is loaded with the global python /
numpy / torch RNGs seeded from (seed, position) (and restored afterwards), so a flip or a scale
drawn by a transform is the same after a resume, for any num_workers. Transforms must therefore
draw from those global RNGs (`random`, `np.random`, `torch.rand`), not from a private generator.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from plugrcnn.engine.checkpoint import isolated_global_rng
from plugrcnn.errors import PlugrcnnError

StreamKey = tuple[int, int]  # (dataset index, global stream position)


def derive_seed(*words: int) -> int:
    """A well-mixed 63-bit seed from integers (no overlap between (seed, e) pairs, unlike seed + e)."""
    return int(np.random.SeedSequence([int(w) for w in words]).generate_state(2, np.uint64)[0] >> 1)


class TrainingIndexStream(Sampler[StreamKey]):
    """This rank's share of the global stream, from `start_position` on, as (index, position)."""

    def __init__(self, dataset_size: int, *, seed: int, start_position: int = 0,
                 rank: int = 0, world_size: int = 1) -> None:
        if dataset_size <= 0:
            raise PlugrcnnError("training data: the data set is empty; check data.train")
        self.dataset_size = dataset_size
        self.seed = seed
        self.start_position = start_position
        self.rank = rank
        self.world_size = world_size

    def epoch_permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng(derive_seed(self.seed, 0, epoch)).permutation(self.dataset_size)

    def __iter__(self) -> Iterator[StreamKey]:
        position = self.start_position + self.rank
        epoch, permutation = -1, np.empty(0, dtype=np.int64)
        while True:
            position_epoch, offset = divmod(position, self.dataset_size)
            if position_epoch != epoch:
                epoch, permutation = position_epoch, self.epoch_permutation(position_epoch)
            yield int(permutation[offset]), position
            position += self.world_size


class PositionSeededDataset(Dataset):
    """Loads `dataset[index]` with the global RNGs seeded from (seed, stream position)."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed

    def __getitem__(self, key: StreamKey) -> Any:
        index, position = key
        with isolated_global_rng(derive_seed(self.seed, 1, position)):
            return self.dataset[index]


def build_training_loader(dataset: Dataset, collate_fn: Callable[[list[Any]], Any], *,
                          images_per_process: int, seed: int, start_position: int,
                          num_workers: int, rank: int, world_size: int,
                          pin_memory: bool = False) -> DataLoader:
    """An endless DataLoader of this rank's batches, starting at global `start_position`."""
    stream = TrainingIndexStream(len(dataset), seed=seed, start_position=start_position,
                                 rank=rank, world_size=world_size)
    # A private generator: creating the iterator must not draw from the global torch RNG, or a
    # resumed run (which creates it after restoring that RNG) would diverge from an unbroken one.
    loader_generator = torch.Generator().manual_seed(derive_seed(seed, 2, start_position, rank))
    return DataLoader(PositionSeededDataset(dataset, seed), batch_size=images_per_process,
                      sampler=stream, collate_fn=collate_fn, num_workers=num_workers,
                      pin_memory=pin_memory, generator=loader_generator, drop_last=True)
