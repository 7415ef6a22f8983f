"""Config -> data sets, through the format `data.format` names, and what the data say about
themselves (`DatasetInfo`: classes, categories), computed and passed on, never written into the
config."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from plugrcnn.config.schema import Config, DatasetConfig
from plugrcnn.data.coco import CocoDataset
from plugrcnn.data.formats import LoadOptions, dataset_format
from plugrcnn.errors import PlugrcnnError
from plugrcnn.heads.spec import DatasetInfo


def load_split(cfg: Config, split: str, *, training: bool, transform: Any = None) -> CocoDataset:
    ds: DatasetConfig = getattr(cfg.data, split)
    where = cfg.source or "config"
    if not ds.instances or not ds.images:
        raise PlugrcnnError(f"{where}: data.{split}.instances and data.{split}.images "
                            f"must name an annotation file and an image folder")
    fmt = dataset_format(cfg.data.format, cfg.provenance.get("data.format", where))
    inp = cfg.model.input
    # the smallest short side the images are resized to decides whether a thin image survives
    resize_to = (min(inp.min_size_train), inp.max_size_train) if training else \
        (inp.min_size_test, inp.max_size_test)
    options = LoadOptions(training=training, category_ids=tuple(cfg.model.category_ids) or None,
                          max_image_pixels=inp.max_image_pixels, resize_to=resize_to, transform=transform)
    return fmt.load(ds, options)


def dataset_info(cfg: Config, dataset: CocoDataset) -> DatasetInfo:
    """The training data's classes (the config's class names and category ids where it sets
    them) and category records, checked against model.num_classes when the config sets it."""
    m = cfg.model
    where = cfg.provenance.get("model.num_classes")
    if where and m.num_classes != dataset.num_classes:
        raise PlugrcnnError(f"{where}: key model.num_classes is {m.num_classes} but the training "
                            f"data has {dataset.num_classes} categories; remove the key or fix it")
    labels = range(1, dataset.num_classes + 1)
    ids = tuple(dataset.label_to_category_id[i] for i in labels)
    return DatasetInfo(num_classes=dataset.num_classes,
                       class_names=tuple(m.class_names) or tuple(dataset.category_names[i] for i in labels),
                       category_ids=tuple(m.category_ids) or ids,
                       categories=tuple(dataset.categories[i] for i in ids), source=dataset.source)


def config_for_data(cfg: Config, info: DatasetInfo) -> Config:
    """A new Config whose model has the data's classes: what the model is built from and what
    the trained model's config.yaml records. `cfg` itself is left as loaded."""
    model = replace(cfg.model, num_classes=info.num_classes, class_names=info.class_names,
                    category_ids=info.category_ids)
    return replace(cfg, model=model)
