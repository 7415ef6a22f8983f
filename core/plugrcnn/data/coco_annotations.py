"""Content checks of one COCO annotation, and the skip log that counts what is dropped.

A bad annotation is never fatal: `check_annotation` names what is wrong, the data set skips the
annotation and `SkipLog` warns (file, annotation id, image id) and counts it per reason, with a
summary at the end. Nothing is dropped without being counted.
"""
from __future__ import annotations

import math
import warnings
from typing import Any

from plugrcnn.data.coco_json import DatasetWarning

# every reason an annotation can be skipped for; `CocoDataset.skipped` has all of them as keys
SKIP_REASONS: tuple[str, ...] = (
    "unknown_image",      # image_id not among the file's images
    "unknown_category",   # category_id not among the file's categories
    "missing_image_file", # its image file does not exist (the image is skipped too)
    "bad_bbox",           # missing, not 4 numbers, width or height <= 0, outside the image
    "bad_segmentation",   # polygon with < 3 points or odd length, malformed RLE (size, counts),
                          # `[]` in a file whose other annotations have masks
    "bad_keypoints",      # wrong length for its category, bad visibility flag
    "duplicate_id",       # annotation id already used in the same file
    "merge_conflict",     # keypoints file id matches an annotation of another image/category
)
_DETAILED_WARNINGS_PER_REASON = 10


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_bbox(annotation: dict[str, Any], width: int, height: int) -> str | None:
    bbox = annotation.get("bbox")
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
        return f"bbox must be 4 numbers [x, y, width, height], got {bbox!r:.60}"
    x, y, w, h = bbox
    if w <= 0 or h <= 0:
        return f"bbox {bbox} has zero or negative size"
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        return f"bbox {bbox} lies outside the {height}x{width} image"
    return None


def _check_polygons(polygons: list[Any]) -> str | None:
    for polygon in polygons:
        if not (isinstance(polygon, list) and all(_is_number(v) for v in polygon)):
            return "polygon must be a list of numbers [x0, y0, x1, y1, ...]"
        if len(polygon) < 6 or len(polygon) % 2:
            return f"polygon with {len(polygon)} coordinates needs an even number >= 6 " \
                   "(3 points or more)"
    return None


def compressed_rle_counts(text: str) -> list[int] | str:
    """The run lengths of a compressed COCO RLE string, or why the string is not one.

    COCO's format (pycocotools' rleFrString): each count is LEB128-like groups of 5 bits, one
    character per group (chr(48 + group), bit 0x20 set when another group follows, bit 0x10 of
    the last group the sign); from the fourth count on, each is stored as a difference from
    the count two places back. pycocotools decodes any string without complaint, so a damaged
    one would become a mask of garbage; decoding it here lets the data set refuse it.
    """
    counts: list[int] = []
    position = 0
    while position < len(text):
        value, shift, more = 0, 0, True
        while more:
            if position >= len(text):
                return "compressed RLE counts end in the middle of a number"
            group = ord(text[position]) - 48
            if not 0 <= group <= 63:
                return f"compressed RLE counts hold {text[position]!r}, not a character of COCO's format"
            value |= (group & 0x1F) << shift
            more = bool(group & 0x20)
            position += 1
            shift += 5
            if not more and group & 0x10:
                value |= -1 << shift
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def _check_rle(rle: dict[str, Any], width: int, height: int) -> str | None:
    size, counts = rle.get("size"), rle.get("counts")
    if size != [height, width]:
        return f"RLE size {size!r:.40} differs from the image size [{height}, {width}]"
    if isinstance(counts, str):
        decoded = compressed_rle_counts(counts)
        if isinstance(decoded, str):
            return decoded
        if any(c < 0 for c in decoded):
            return "compressed RLE counts decode to a negative run length"
        if sum(decoded) != height * width:
            return f"compressed RLE counts cover {sum(decoded)} pixels, not {height}*{width}"
        return None
    if isinstance(counts, list) and all(isinstance(c, int) and not isinstance(c, bool) and c >= 0
                                        for c in counts):
        if sum(counts) != height * width:
            return f"uncompressed RLE counts sum to {sum(counts)}, not {height}*{width}"
        return None
    return "RLE counts must be a string (compressed) or a list of run lengths"


def _check_segmentation(annotation: dict[str, Any], width: int, height: int,
                        masks_expected: bool) -> str | None:
    segmentation = annotation.get("segmentation")
    if segmentation is None or segmentation == []:
        if masks_expected and segmentation == [] and not annotation.get("iscrowd", 0):
            return "segmentation is empty in a file whose other annotations have masks"
        return None  # no mask: a box-only annotation
    if isinstance(segmentation, list):
        return _check_polygons(segmentation)
    if isinstance(segmentation, dict):
        return _check_rle(segmentation, width, height)
    return f"segmentation must be polygons or an RLE object, got {type(segmentation).__name__}"


def _check_keypoints(annotation: dict[str, Any], keypoint_count: int) -> str | None:
    keypoints = annotation.get("keypoints")
    if keypoints is None:
        return None
    if keypoint_count == 0:
        return "has keypoints but its category lists no keypoint names"
    if not (isinstance(keypoints, list) and all(_is_number(v) for v in keypoints)):
        return "keypoints must be a list of numbers [x, y, v, ...]"
    if len(keypoints) != 3 * keypoint_count:
        return (f"keypoints has {len(keypoints)} values, expected {3 * keypoint_count} "
                f"(3 per keypoint, {keypoint_count} keypoints in its category)")
    if any(v not in (0, 1, 2) for v in keypoints[2::3]):
        return "keypoint visibility flags must be 0, 1 or 2"
    return None


def has_mask(annotation: dict[str, Any]) -> bool:
    """Whether the annotation carries a non-empty segmentation (polygons or RLE)."""
    segmentation = annotation.get("segmentation")
    return isinstance(segmentation, dict) or (isinstance(segmentation, list) and len(segmentation) > 0)


def check_annotation(
    annotation: dict[str, Any], image: dict[str, Any], keypoint_count: int,
    masks_expected: bool = False,
) -> tuple[str, str] | None:
    """(reason, detail) when the annotation cannot be used on `image`, else None.

    `keypoint_count` is the number of keypoint names of the annotation's category (0 if none).
    `masks_expected`: other annotations of the file have masks, so an explicitly empty
    segmentation (`[]`) is a hole in the data (a mask head would train and be scored on
    nothing there), not a box-only annotation.
    """
    width, height = image["width"], image["height"]
    for reason, problem in (
        ("bad_bbox", _check_bbox(annotation, width, height)),
        ("bad_segmentation", _check_segmentation(annotation, width, height, masks_expected)),
        ("bad_keypoints", _check_keypoints(annotation, keypoint_count)),
    ):
        if problem is not None:
            return reason, problem
    return None


def complete_annotation(annotation: dict[str, Any], label: int, width: int,
                        height: int) -> dict[str, Any]:
    """A copy with COCO's optional fields filled in, plus `label` and the XYXY `box`.

    `box` is the bbox clipped to the image, as floats; `iscrowd` defaults to 0, `area` to the
    box area, `num_keypoints` to the number of keypoints with v > 0.
    """
    x, y, w, h = (float(v) for v in annotation["bbox"])
    completed = dict(annotation)
    completed.setdefault("iscrowd", 0)
    completed.setdefault("area", w * h)
    if "keypoints" in completed and "num_keypoints" not in completed:
        completed["num_keypoints"] = sum(1 for v in completed["keypoints"][2::3] if v > 0)
    completed["label"] = label
    completed["box"] = [min(max(x, 0.0), width), min(max(y, 0.0), height),
                        min(max(x + w, 0.0), width), min(max(y + h, 0.0), height)]
    return completed


class SkipLog:
    """Counts skipped annotations and images per reason, warns for each (the first ten per
    reason in detail), and summarises at the end."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.annotations: dict[str, int] = {reason: 0 for reason in SKIP_REASONS}
        self.annotation_ids: dict[str, list[int]] = {reason: [] for reason in SKIP_REASONS}
        self.images: dict[str, int] = {"missing_file": 0, "corrupt_file": 0}
        self.image_ids: dict[str, list[int]] = {"missing_file": [], "corrupt_file": []}

    def skip_annotation(self, annotation: dict[str, Any], reason: str, detail: str,
                        warn: bool = True) -> None:
        """Count it; warn unless `warn` is False (when another warning already covers it)."""
        self.annotations[reason] += 1
        self.annotation_ids[reason].append(annotation["id"])
        if warn and self.annotations[reason] <= _DETAILED_WARNINGS_PER_REASON:
            warnings.warn(f"{self.source}: annotation id {annotation['id']} (image id "
                          f"{annotation['image_id']}): {detail}; annotation skipped ({reason})",
                          DatasetWarning, stacklevel=4)

    def skip_image(self, image: dict[str, Any], path: str, reason: str, detail: str) -> None:
        self.images[reason] += 1
        self.image_ids[reason].append(image["id"])
        if self.images[reason] <= _DETAILED_WARNINGS_PER_REASON:
            warnings.warn(f"{self.source}: image id {image['id']} ({path}): {detail}; image "
                          f"and its annotations skipped ({reason})", DatasetWarning, stacklevel=4)

    def summarise(self) -> None:
        """One warning with the counts per reason, if anything was skipped."""
        counts = {reason: n for reason, n in self.annotations.items() if n}
        counts |= {f"image_{reason}": n for reason, n in self.images.items() if n}
        if not counts:
            return
        totals = [f"{total} {what}(s)" for total, what in (
            (sum(self.annotations.values()), "annotation"), (sum(self.images.values()), "image"))
            if total]
        listed = ", ".join(f"{reason}={n}" for reason, n in counts.items())
        warnings.warn(f"{self.source}: skipped {' and '.join(totals)}: {listed}; fix the data "
                      "to use them", DatasetWarning, stacklevel=4)
