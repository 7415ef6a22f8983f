"""Config -> data sets: the training set (augmented, every head's targets) and the evaluation set."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from plugrcnn.config.schema import Config, DatasetConfig
from plugrcnn.data.coco import CocoDataset
from plugrcnn.errors import PlugrcnnError


def load_split(cfg: Config, split: str, *, training: bool, transform: Any = None) -> CocoDataset:
    ds: DatasetConfig = getattr(cfg.data, split)
    if not ds.instances or not ds.images:
        raise PlugrcnnError(f"{cfg.source or 'config'}: data.{split}.instances and data.{split}.images "
                            f"must name a COCO JSON file and an image folder")
    category_ids = list(cfg.model.category_ids) or None
    inp = cfg.model.input
    # the smallest short side the images are resized to decides whether a thin image survives
    resize_to = (min(inp.min_size_train), inp.max_size_train) if training else \
        (inp.min_size_test, inp.max_size_test)
    # every image's header is read up front (no decoding): bad files are skipped with a warning
    # here, not found by a DataLoader worker hours into training
    return CocoDataset.from_files(Path(ds.instances).expanduser(), Path(ds.images).expanduser(),
                                  keypoints_json=Path(ds.keypoints).expanduser() if ds.keypoints else None,
                                  training=training, category_ids=category_ids, transform=transform,
                                  check_headers=True, max_image_pixels=inp.max_image_pixels,
                                  resize_to=resize_to)


def sync_model_with_dataset(cfg: Config, dataset: CocoDataset) -> None:
    """Fill num_classes / class_names / category_ids from the data set unless the config set them."""
    m = cfg.model
    where = cfg.provenance.get("model.num_classes")
    if where and m.num_classes != dataset.num_classes:
        raise PlugrcnnError(f"{where}: key model.num_classes is {m.num_classes} but the training "
                            f"data has {dataset.num_classes} categories; remove the key or fix it")
    m.num_classes = dataset.num_classes
    labels = range(1, dataset.num_classes + 1)
    if not m.category_ids:
        m.category_ids = tuple(dataset.label_to_category_id[i] for i in labels)
    if not m.class_names:
        m.class_names = tuple(dataset.category_names[i] for i in labels)
