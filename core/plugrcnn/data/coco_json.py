"""Reading COCO-format JSON files: structural validation and the instances + keypoints merge.

What is fatal and what is not (issue 4, point 8):
- a file that is not COCO (not JSON, not an object, a missing or mistyped top-level key, an
  image / category / annotation record without its integer id fields, duplicate image or
  category ids) raises PlugrcnnError naming the file, the key and the record's index and id;
- the *content* of an annotation (its box, segmentation, keypoints, whether its image and
  category exist) is checked later by the data set, which skips and counts bad annotations.
"""
from __future__ import annotations

import contextlib
import gc
import json
import warnings
from collections.abc import Iterator
from itertools import repeat
from pathlib import Path
from typing import Any

from plugrcnn.errors import PlugrcnnError

# orjson parses COCO files faster than json and builds the same objects, except: it refuses NaN
# and Infinity, and reads integers past 64 bits as floats. So a file orjson refuses, or whose
# structure check fails (an id read as a float), is read again with json, whose reading and
# messages decide; past 64 bits, a coordinate or area stays orjson's float (equal in value up
# to float rounding: no pixel coordinate is that large).
try:
    import orjson
except ImportError:  # pragma: no cover
    orjson = None  # type: ignore[assignment]

CocoDict = dict[str, Any]
TOP_LEVEL_KEYS = ("images", "annotations", "categories")
# record kind -> (key, expected python type, type name for messages) that must be present
_REQUIRED_FIELDS: dict[str, tuple[tuple[str, type, str], ...]] = {
    "images": (("id", int, "an integer"), ("file_name", str, "a string"),
               ("height", int, "an integer"), ("width", int, "an integer")),
    "categories": (("id", int, "an integer"), ("name", str, "a string")),
    "annotations": (("id", int, "an integer"), ("image_id", int, "an integer"),
                    ("category_id", int, "an integer")),
}


class DatasetWarning(UserWarning):
    """A problem in a data set that plugrcnn worked around (a skipped annotation or image)."""


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: parsing and screening a COCO file creates millions
    of lists and dicts, and each collection would walk them all again (measured: ~30% of the
    load time of a 100k-annotation file). Nothing made here is a reference cycle."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _has_type(value: Any, expected: type) -> bool:
    # JSON true/false load as bool, a subclass of int: never accept them as ids or sizes
    return isinstance(value, expected) and not isinstance(value, bool)


def _check_record(path: Path, kind: str, index: int, record: Any) -> None:
    if not isinstance(record, dict):
        raise PlugrcnnError(f"{path}: {kind}[{index}] must be an object, got "
                            f"{_type_name(record)}; fix the JSON file")
    for key, expected, expected_name in _REQUIRED_FIELDS[kind]:
        where = f"{kind}[{index}]" + (f" (id {record['id']})" if key != "id" and "id" in record
                                       else "")
        if key not in record:
            raise PlugrcnnError(f"{path}: {where} has no key '{key}'; every {kind[:-1]} record "
                                f"needs {', '.join(k for k, _, _ in _REQUIRED_FIELDS[kind])}")
        if not _has_type(record[key], expected):
            raise PlugrcnnError(f"{path}: {where} key '{key}' must be {expected_name}, got "
                                f"{_type_name(record[key])} {record[key]!r:.40}; fix the JSON file")
    if kind == "images" and (record["height"] <= 0 or record["width"] <= 0):
        raise PlugrcnnError(f"{path}: images[{index}] (id {record['id']}) has size "
                            f"{record['height']}x{record['width']}; height and width must be > 0")
    if kind == "categories":
        _check_keypoint_metadata(path, index, record)


def _check_keypoint_metadata(path: Path, index: int, category: dict[str, Any]) -> None:
    where = f"{path}: categories[{index}] (id {category['id']})"
    names = category.get("keypoints")
    if names is not None and not (isinstance(names, list)
                                  and all(isinstance(n, str) for n in names)):
        raise PlugrcnnError(f"{where} key 'keypoints' must be a list of keypoint names")
    skeleton = category.get("skeleton")
    if skeleton is not None:
        count = len(names or [])
        valid = isinstance(skeleton, list) and all(
            isinstance(pair, list) and len(pair) == 2
            and all(_has_type(i, int) and 1 <= i <= count for i in pair) for pair in skeleton)
        if not valid:
            raise PlugrcnnError(f"{where} key 'skeleton' must be a list of [i, j] pairs of "
                                f"1-based keypoint indices (1..{count})")
    flip_pairs = category.get("flip_pairs")  # plugrcnn's addition: [["left_x", "right_x"], ...]
    if flip_pairs is not None and not (isinstance(flip_pairs, list) and all(
            isinstance(pair, list) and len(pair) == 2 and all(n in (names or []) for n in pair)
            for pair in flip_pairs)):
        raise PlugrcnnError(f"{where} key 'flip_pairs' must be a list of [left, right] pairs of "
                            "names from its 'keypoints'")


def _check_unique_ids(path: Path, kind: str, records: list[dict[str, Any]]) -> None:
    seen: set[int] = set()
    for index, record in enumerate(records):
        if record["id"] in seen:
            raise PlugrcnnError(f"{path}: {kind}[{index}] repeats id {record['id']}; "
                                f"{kind} ids must be unique")
        seen.add(record["id"])


def load_coco_json(path: str | Path) -> CocoDict:
    """Read a COCO-format JSON file and check its structure; raise PlugrcnnError if not COCO.

    Annotation ids are not required to be unique here (the data set skips repeats); image and
    category ids are.
    """
    path = Path(path)
    with cyclic_gc_paused():
        return _load_checked(path)


def _load_checked(path: Path) -> CocoDict:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PlugrcnnError(f"{path}: annotation file not found; check the path") from None
    except OSError as error:  # a directory, no permission, ...
        raise PlugrcnnError(f"{path}: cannot read the annotation file ({error.strerror})"
                            ) from None
    if orjson is not None:
        try:
            return _checked_structure(path, orjson.loads(raw))
        except (orjson.JSONDecodeError, PlugrcnnError):
            pass  # json's reading decides: it accepts NaN, keeps ints past 64 bits as ints
    return _checked_structure(path, _parse_with_json(path, raw))


def _parse_with_json(path: Path, raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PlugrcnnError(f"{path}: not a JSON file ({str(error).splitlines()[0]}); "
                            "expected a COCO-format annotation file") from None


def _checked_structure(path: Path, content: Any) -> CocoDict:
    """`content` if it is a COCO dict (see `load_coco_json`), else PlugrcnnError."""
    if not isinstance(content, dict):
        raise PlugrcnnError(f"{path}: top level is {_type_name(content)}, expected an object "
                            "with keys images, annotations, categories (COCO format)")
    for key in TOP_LEVEL_KEYS:
        if key not in content:
            raise PlugrcnnError(f"{path}: missing key '{key}'; a COCO-format file needs "
                                "images, annotations and categories")
        if not isinstance(content[key], list):
            raise PlugrcnnError(f"{path}: key '{key}' must be a list, got "
                                f"{_type_name(content[key])}")
    for kind in TOP_LEVEL_KEYS:
        if kind == "categories" or not _records_look_valid(kind, content[kind]):
            for index, record in enumerate(content[kind]):  # finds and names the bad record
                _check_record(path, kind, index, record)
    for kind in ("images", "categories"):
        if len({record["id"] for record in content[kind]}) != len(content[kind]):
            _check_unique_ids(path, kind, content[kind])
    return content


def _records_look_valid(kind: str, records: list[Any]) -> bool:
    """Whether every record passes `_check_record`, judged a field at a time across records
    (no Python call per record); False sends the caller to `_check_record` for the message."""
    if set(map(type, records)) - {dict}:
        return False
    for key, expected, _ in _REQUIRED_FIELDS[kind]:
        # exact types: bool (a subclass of int) must not pass for an int
        if set(map(type, map(dict.get, records, repeat(key)))) - {expected}:
            return False
    if kind == "images" and records:
        return min(record["height"] for record in records) > 0 and \
            min(record["width"] for record in records) > 0
    return True


def _merge_images(instances: CocoDict, keypoints: CocoDict, instances_path: Path,
                  keypoints_path: Path) -> None:
    file_names = {image["id"]: image["file_name"] for image in instances["images"]}
    unknown = [image["id"] for image in keypoints["images"] if image["id"] not in file_names]
    if unknown:
        raise PlugrcnnError(f"{keypoints_path}: {len(unknown)} image id(s) not in "
                            f"{instances_path} (first: {unknown[:5]}); the two files must "
                            "describe the same images")
    for image in keypoints["images"]:
        if image["file_name"] != file_names[image["id"]]:
            raise PlugrcnnError(f"{keypoints_path}: image id {image['id']} is "
                                f"'{image['file_name']}' but '{file_names[image['id']]}' in "
                                f"{instances_path}; the two files must describe the same images")
    missing = len(file_names) - len(keypoints["images"])
    if missing > 0:
        warnings.warn(f"{keypoints_path}: lists {missing} fewer image(s) than {instances_path}; "
                      "annotations on those images carry no keypoints", DatasetWarning,
                      stacklevel=3)


def _merge_categories(instances: CocoDict, keypoints: CocoDict, instances_path: Path,
                      keypoints_path: Path) -> list[dict[str, Any]]:
    merged = {category["id"]: dict(category) for category in instances["categories"]}
    for category in keypoints["categories"]:
        if category["id"] not in merged:
            merged[category["id"]] = dict(category)
            continue
        if merged[category["id"]]["name"] != category["name"]:
            raise PlugrcnnError(f"{keypoints_path}: category id {category['id']} is "
                                f"'{category['name']}' but '{merged[category['id']]['name']}' "
                                f"in {instances_path}; use the same category ids in both files")
        for key in ("keypoints", "skeleton", "flip_pairs"):
            if key in category:
                merged[category["id"]][key] = category[key]
    return list(merged.values())


def merge_keypoints_into_instances(
    instances: CocoDict, keypoints: CocoDict, instances_path: Path, keypoints_path: Path
) -> tuple[CocoDict, list[tuple[dict[str, Any], str]]]:
    """Attach the keypoints of a person_keypoints-style file to the instances annotations.

    Annotations are matched by id: a match gets `keypoints` and `num_keypoints` from the
    keypoints file; an id only in the keypoints file is added whole. Categories are merged by
    id (keypoint names, skeleton and flip pairs come from the keypoints file). The keypoints
    file's images must be a subset of the instances file's (else PlugrcnnError); fewer images
    only warn. Neither input is modified.

    Returns the merged COCO dict and the conflicts: (keypoints annotation, reason) for ids that
    match an annotation on another image or of another category; the caller skips and counts
    them.
    """
    _merge_images(instances, keypoints, instances_path, keypoints_path)
    annotations = [dict(annotation) for annotation in instances["annotations"]]
    by_id: dict[int, dict[str, Any]] = {}
    for annotation in annotations:
        by_id.setdefault(annotation["id"], annotation)
    conflicts: list[tuple[dict[str, Any], str]] = []
    for keypoint_annotation in keypoints["annotations"]:
        match = by_id.get(keypoint_annotation["id"])
        if match is None:
            annotations.append(dict(keypoint_annotation))
        elif (match["image_id"], match["category_id"]) != (
                keypoint_annotation["image_id"], keypoint_annotation["category_id"]):
            conflicts.append((keypoint_annotation,
                              f"matches an annotation of image id {match['image_id']}, category "
                              f"id {match['category_id']} in {instances_path}"))
        else:
            for key in ("keypoints", "num_keypoints"):
                if key in keypoint_annotation:
                    match[key] = keypoint_annotation[key]
    merged = {**instances, "annotations": annotations,
              "categories": _merge_categories(instances, keypoints, instances_path,
                                              keypoints_path)}
    return merged, conflicts
