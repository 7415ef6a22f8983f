"""Screening every annotation of a file at once, with numpy, for the few that need a closer look.

Checking each of COCO train2017's 860k annotations in Python (its box, every polygon
coordinate) costs more than parsing the file. The screen reads each field across all
annotations into arrays and marks the rows that *might* be bad or need routing (repeated id,
unknown image or category, skipped image, a box or polygon failing a check, an RLE, keypoints,
an empty or odd segmentation). Only those rows go through `check_annotation` one by one, in file
order, so warnings, counts and skip reasons are exactly those of checking every row in Python;
a row the screen passes is one `check_annotation` would pass too.

When a field holds something the vectorised path cannot judge (a polygon that is not a list of
numbers, a bool among coordinates, a bbox that is not 4 numbers) every row with that field is
marked: slower, still exact. Shape shorthand: N annotations, P polygons, C coordinates.
"""
from __future__ import annotations

import array
from dataclasses import dataclass
from itertools import chain, repeat
from typing import Any

import numpy as np

from plugrcnn.data.coco_annotations import has_mask

_NUMBER_TYPES = {int, float}
_EXACT_FLOAT_LIMIT = 2.0 ** 52  # past this a float64 may round what Python's ints compare


@dataclass
class Screen:
    """Per annotation (N,) bool: `exact` rows need the Python check; `duplicate` rows repeat an
    earlier row's id; `chosen` rows are of a chosen category."""

    exact: np.ndarray
    duplicate: np.ndarray
    chosen: np.ndarray


def _column(annotations: list[dict[str, Any]], key: str) -> list[Any]:
    """annotation.get(key) of each annotation (a C loop: 2x a list comprehension)."""
    return list(map(dict.get, annotations, repeat(key)))


def _lookup(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Index of each id in `sorted_ids` (M,), -1 where absent."""
    if len(sorted_ids) == 0:
        return np.full(len(ids), -1, dtype=np.int64)
    where = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
    return np.where(sorted_ids[where] == ids, where, -1)


def _first_occurrences(ids: np.ndarray) -> np.ndarray:
    """(N,) bool: True where an id already appeared earlier in the file."""
    duplicate = np.ones(len(ids), dtype=bool)
    duplicate[np.unique(ids, return_index=True)[1]] = False
    return duplicate


def _bbox_rows_to_check(boxes: list[Any], widths: np.ndarray, heights: np.ndarray) -> np.ndarray:
    """(N,) bool: rows whose bbox `_check_bbox` might refuse."""
    if set(map(type, boxes)) - {list} or set(map(len, boxes)) - {4} or \
            set(map(type, chain.from_iterable(boxes))) - _NUMBER_TYPES:
        return np.ones(len(boxes), dtype=bool)  # something not 4 numbers somewhere: all exact
    values = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    x, y, w, h = values.T
    with np.errstate(invalid="ignore"):
        good = (np.isfinite(values).all(axis=1) & (np.abs(values) < _EXACT_FLOAT_LIMIT).all(axis=1)
                & (w > 0) & (h > 0) & (x < widths) & (y < heights) & (x + w > 0) & (y + h > 0))
    return ~good


def _coordinates_are_plain_numbers(flat: list[Any], values: np.ndarray) -> bool:
    """Whether `flat` (C,), read as float64 `values`, held ints and floats only: bools were
    read as 1.0 / 0.0, so the 0s and 1s are looked at one by one."""
    ones_or_zeros = np.flatnonzero((values == 0) | (values == 1)).tolist()
    return not any(type(flat[i]) is bool for i in ones_or_zeros)


def _polygon_rows_to_check(segmentations: list[Any], masks_expected: bool) -> np.ndarray:
    """(N,) bool: rows whose segmentation `_check_segmentation` might refuse (RLE, empty, or
    polygons of bad length or value), or that hold something other than polygons or None."""
    kinds = list(map(type, segmentations))
    is_polygons = np.fromiter((kind is list for kind in kinds), dtype=bool, count=len(kinds))
    is_none = np.fromiter((s is None for s in segmentations), dtype=bool, count=len(kinds))
    rows = np.flatnonzero(is_polygons)
    lists = [segmentations[i] for i in rows.tolist()]
    counts = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    check = ~(is_polygons | is_none)
    check[rows[counts == 0]] = masks_expected  # `[]` is refused only when others have masks
    polygons = list(chain.from_iterable(lists))
    if set(map(type, polygons)) - {list}:
        check[rows] = True
        return check
    lengths = np.fromiter(map(len, polygons), dtype=np.int64, count=len(polygons))
    flat = list(chain.from_iterable(polygons))
    try:  # array.array refuses str, None and lists (numpy would read "7" as 7.0); 2x np.array
        values = np.frombuffer(array.array("d", flat), dtype=np.float64)
    except (TypeError, OverflowError):
        values = None
    plain = values is not None and _coordinates_are_plain_numbers(flat, values)
    del flat  # (C,) pointers: 400 MB on COCO train2017, freed before the next arrays
    if not plain:
        check[rows] = True
        return check
    polygon_row = np.repeat(rows, counts)  # (P,)
    bad_polygon = (lengths < 6) | (lengths % 2 == 1)
    with np.errstate(invalid="ignore"):
        bad_value = ~np.isfinite(values) | (np.abs(values) >= _EXACT_FLOAT_LIMIT)
    if bad_value.any():
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        bad_polygon[np.searchsorted(starts, np.flatnonzero(bad_value), side="right") - 1] = True
    check[polygon_row[bad_polygon]] = True
    return check


def screen_annotations(annotations: list[dict[str, Any]], known_image_ids: np.ndarray,
                       available_ids: np.ndarray, image_sizes: np.ndarray,
                       category_ids: np.ndarray, chosen_ids: np.ndarray,
                       masks_expected: bool) -> Screen:
    """Screen all annotations; ids arrays are sorted int64, `image_sizes` (len(available), 2)
    holds (height, width) of each available image."""
    count = len(annotations)
    ids = np.array(_column(annotations, "id"), dtype=np.int64).reshape(count)
    image_ids = np.array(_column(annotations, "image_id"), dtype=np.int64).reshape(count)
    labels = np.array(_column(annotations, "category_id"), dtype=np.int64).reshape(count)
    duplicate = _first_occurrences(ids)
    image_index = _lookup(available_ids, image_ids)
    routed = (duplicate | (_lookup(known_image_ids, image_ids) < 0)
              | (_lookup(category_ids, labels) < 0) | (image_index < 0))
    heights, widths = image_sizes[np.maximum(image_index, 0)].T if len(image_sizes) else \
        (np.zeros(count), np.zeros(count))
    content = (_bbox_rows_to_check(_column(annotations, "bbox"), widths, heights)
               | _polygon_rows_to_check(_column(annotations, "segmentation"), masks_expected)
               | np.fromiter((k is not None for k in _column(annotations, "keypoints")),
                             dtype=bool, count=count))
    chosen = np.isin(labels, chosen_ids)
    # a row of an unchosen category is excluded before its content is looked at
    return Screen(exact=routed | (content & chosen), duplicate=duplicate, chosen=chosen)


def masks_expected_in(annotations: list[dict[str, Any]]) -> bool:
    """`any(has_mask(a) for a in annotations)`, without a Python call per annotation."""
    segmentations = _column(annotations, "segmentation")
    if set(map(type, segmentations)) <= {list, type(None)}:
        return any(segmentations)  # None and [] are false, a list of polygons true
    return any(map(has_mask, annotations))
