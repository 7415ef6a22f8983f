"""Pictures of predictions: one PNG per image and a contact sheet."""
from __future__ import annotations

from pathlib import Path

import torch
from torchvision.io import encode_png
from torchvision.utils import make_grid

from plugrcnn.data.coco import CocoDataset
from plugrcnn.inference.predictor import Predictor
from plugrcnn.outputs import prepare_output_dir, write_bytes_atomic


def _png(picture: torch.Tensor) -> bytes:
    return encode_png(picture.cpu()).numpy().tobytes()


def draw_grid(predictor: Predictor, dataset: CocoDataset, out_dir: Path, count: int = 12,
              upscale: int = 2) -> Path:
    """Draw the first `count` images' predictions into `out_dir`; return the contact sheet path."""
    prepare_output_dir(out_dir)
    drawn = []
    for index in range(min(count, len(dataset))):
        item = dataset[index]
        image = item["image"]
        if upscale > 1:
            # small images: predict on a nearest-upscaled copy (the model resizes its input to
            # the same network size) so boxes, masks and labels are drawn legibly, at full size
            image = torch.nn.functional.interpolate(image[None].float(), scale_factor=upscale,
                                                    mode="nearest")[0].to(torch.uint8)
        detection = predictor([image])[0]
        picture = predictor.draw(image, detection)
        write_bytes_atomic(out_dir / f"{Path(item['file_name']).name}.png", _png(picture))
        drawn.append(picture)
    sheet = out_dir.parent / "predictions_grid.png"
    if drawn:
        size = max(p.shape[-2] for p in drawn), max(p.shape[-1] for p in drawn)
        padded = [torch.nn.functional.pad(p, (0, size[1] - p.shape[-1], 0, size[0] - p.shape[-2]))
                  for p in drawn]
        write_bytes_atomic(sheet, _png(make_grid(padded, nrow=4, padding=4, pad_value=255)))
    return sheet
