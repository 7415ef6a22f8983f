"""Data set formats behind one registry: `data.format` names the loader of both splits.

A format is a `DatasetFormat` record: a name and ``load(split, options) -> CocoDataset``. COCO
is built in; another format arrives from a plugin (hook ``plugrcnn_register_dataset_formats``,
entry-point group ``plugrcnn.dataset_formats``), the way heads do. A loader reads its own files
(`split.instances`: its annotation file, `split.images`: its image folder) into an in-memory COCO
dict and returns ``CocoDataset(coco, images, **options.dataset_kwargs())``, so everything after
it (bad-input checks, the heads' target codecs, evaluation) is the same for every format.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from plugrcnn.config.schema import DatasetConfig
from plugrcnn.data.coco import CocoDataset
from plugrcnn.errors import PlugrcnnError

ENTRY_POINT_GROUP = "plugrcnn.dataset_formats"


@dataclass(frozen=True)
class LoadOptions:
    """What the core asks of a loaded split, besides its files."""
    training: bool
    category_ids: tuple[int, ...] | None      # the labels' categories, in order; None: all, sorted
    max_image_pixels: int                     # headers over this are skipped with a warning
    resize_to: tuple[int, int]                # (smallest short side, max side) the model resizes to
    transform: Any = None

    def dataset_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `CocoDataset` that carry these options."""
        return dict(training=self.training, category_ids=self.category_ids, transform=self.transform,
                    check_headers=True, max_image_pixels=self.max_image_pixels, resize_to=self.resize_to)


@dataclass(frozen=True)
class DatasetFormat:
    name: str                                             # the value of data.format
    load: Callable[[DatasetConfig, LoadOptions], CocoDataset]
    description: str = ""


def load_coco(split: DatasetConfig, options: LoadOptions) -> CocoDataset:
    """COCO instances JSON (+ an optional person_keypoints-style file) and an image folder."""
    # every image's header is read up front (no decoding): bad files are skipped with a warning
    # here, not found by a DataLoader worker hours into training
    return CocoDataset.from_files(Path(split.instances).expanduser(), Path(split.images).expanduser(),
                                  keypoints_json=Path(split.keypoints).expanduser() if split.keypoints else None,
                                  **options.dataset_kwargs())


BUILTIN_FORMATS = (DatasetFormat("coco", load_coco, "COCO instances JSON + image folder"),)


def dataset_formats() -> dict[str, DatasetFormat]:
    """Format name -> record: the built-in ones, then those installed plugins register."""
    from plugrcnn.plugins.manager import create_plugin_manager

    formats = {f.name: f for f in BUILTIN_FORMATS}
    pm = create_plugin_manager()
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            pm.register(ep.load(), name=f"{ENTRY_POINT_GROUP}:{ep.name}")
        except Exception as exc:  # an installed but broken plugin: say which one
            raise PlugrcnnError(f"dataset format plugin '{ep.name}' ({ep.value}) failed to import: "
                                f"{type(exc).__name__}: {exc}") from exc
    for records in pm.hook.plugrcnn_register_dataset_formats():
        for record in records or ():
            if record.name in formats:
                raise PlugrcnnError(f"dataset format '{record.name}' is registered twice; "
                                    f"uninstall one of the plugins that provide it")
            formats[record.name] = record
    return formats


def dataset_format(name: str, where: str) -> DatasetFormat:
    formats = dataset_formats()
    if name not in formats:
        raise PlugrcnnError(f"{where}: key data.format: unknown data set format '{name}' "
                            f"(installed: {', '.join(sorted(formats))})")
    return formats[name]
