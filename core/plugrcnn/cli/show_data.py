"""Draw the ground truth as the model will see it, through each head's own drawing."""
from __future__ import annotations

import argparse
import random
from pathlib import Path

from plugrcnn.config import load_config
from plugrcnn.errors import PlugrcnnError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--split", choices=("train", "val"), default="train")
    parser.add_argument("--augment", action="store_true",
                        help="apply the training augmentation (resize, flip) as training does")
    parser.add_argument("--output", required=True, type=Path, help="folder for one PNG per image")
    parser.add_argument("--count", type=int, default=16, help="how many images (default 16; 0: all)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the augmentation draws")
    parser.add_argument("opts", nargs="*", help="config overrides key.sub=value")


def run(args: argparse.Namespace) -> int:
    from torchvision.io import encode_png

    from plugrcnn.data.build import config_for_data, dataset_info, load_split
    from plugrcnn.data.mapper import DatasetMapper
    from plugrcnn.data.transforms import TrainAugmentation
    from plugrcnn.inference.ground_truth import draw_ground_truth, uint8_image
    from plugrcnn.modeling.build import build_model
    from plugrcnn.outputs import prepare_output_dir, write_bytes_atomic
    from plugrcnn.progress import progress

    if args.count < 0:
        raise PlugrcnnError(f"--count must be 0 (all) or positive, got {args.count}")
    cfg = load_config(args.config, args.opts)
    dataset = load_split(cfg, args.split, training=args.split == "train")
    info = dataset_info(cfg, dataset)  # class names for the labels, as training derives them
    heads = dict(build_model(config_for_data(cfg, info), data=info).model.heads)
    inp = cfg.model.input
    augmentation = TrainAugmentation(tuple(inp.min_size_train), inp.max_size_train, inp.flip_prob) \
        if args.augment else None
    mapper = DatasetMapper({n: c for n, h in heads.items() if (c := h.target_codec()) is not None},
                           augmentation)
    random.seed(args.seed)  # the mapper draws from the global random module, as in training
    prepare_output_dir(args.output)
    count = len(dataset) if args.count == 0 else min(args.count, len(dataset))
    instances = 0
    for index in progress(range(count), desc="show-data", unit="img"):
        mapped = mapper(dataset[index])
        image = uint8_image(mapped["image"])
        picture = draw_ground_truth(heads, image, mapped["targets"])
        write_bytes_atomic(args.output / f"{Path(mapped['file_name']).stem}.png",
                           encode_png(picture).numpy().tobytes())
        instances += int(mapped["targets"].gt_boxes.shape[0])
    print(f"drew {count} {args.split} image(s), {instances} GT instance(s)"
          f"{' after augmentation' if args.augment else ''} -> {args.output}")
    return 0
