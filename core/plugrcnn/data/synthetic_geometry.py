"""Geometry of the synthetic data set: shape outlines and stick figures as polygons.

Coordinates are continuous pixel coordinates (pixel column i covers [i, i + 1)), the convention
of COCO polygons and of pycocotools' rasteriser, so a polygon drawn here rasterises to exactly
the mask that its annotation describes. Every coordinate is rounded to 2 decimals *before* it is
rasterised, so the written JSON and the painted pixels agree bit for bit.

Shape shorthand:
    K   number of figure keypoints (len(FIGURE_KEYPOINT_NAMES))
    P   number of vertices of one polygon
"""
from __future__ import annotations

import math

import numpy as np

# The figure faces the viewer, so its own left side is on the image's right (COCO convention):
# every left_* keypoint lies at a larger x than its right_* partner.
FIGURE_KEYPOINT_NAMES: tuple[str, ...] = (
    "head",
    "neck",
    "left_elbow",
    "right_elbow",
    "left_hand",
    "right_hand",
    "hip",
    "left_knee",
    "right_knee",
    "left_foot",
    "right_foot",
)
# COCO style: 1-based keypoint index pairs.
FIGURE_SKELETON: tuple[tuple[int, int], ...] = (
    (1, 2), (2, 3), (3, 5), (2, 4), (4, 6), (2, 7), (7, 8), (8, 10), (7, 9), (9, 11),
)
FIGURE_FLIP_PAIRS: tuple[tuple[str, str], ...] = (
    ("left_elbow", "right_elbow"),
    ("left_hand", "right_hand"),
    ("left_knee", "right_knee"),
    ("left_foot", "right_foot"),
)

Polygon = list[float]  # [x0, y0, x1, y1, ...] (2P,)


def _round_polygon(points: np.ndarray) -> Polygon:
    # (P, 2) -> (2P,) flat, rounded so that JSON and raster agree
    return [round(float(v), 2) for v in points.reshape(-1)]


def _rotation(angle: float) -> np.ndarray:
    cos, sin = math.cos(angle), math.sin(angle)
    return np.array([[cos, -sin], [sin, cos]])


def regular_polygon(cx: float, cy: float, radius: float, num_vertices: int) -> Polygon:
    """A regular polygon (a disc when num_vertices is large) centred on (cx, cy)."""
    theta = np.arange(num_vertices) * (2.0 * math.pi / num_vertices)
    points = np.stack([cx + radius * np.cos(theta), cy + radius * np.sin(theta)], axis=1)
    return _round_polygon(points)


def circle_polygon(cx: float, cy: float, diameter: float) -> Polygon:
    return regular_polygon(cx, cy, diameter / 2.0, num_vertices=32)


def rectangle_polygon(
    cx: float, cy: float, width: float, height: float, angle: float
) -> Polygon:
    """A rectangle of the given size rotated by `angle` radians about its centre."""
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)
    corners = corners * np.array([width / 2.0, height / 2.0])
    points = corners @ _rotation(angle).T + np.array([cx, cy])
    return _round_polygon(points)


def triangle_polygon(
    cx: float, cy: float, size: float, angle: float, rng: np.random.Generator
) -> Polygon:
    """A roughly equilateral triangle (each vertex jittered a little) of circumdiameter `size`."""
    theta = angle + np.arange(3) * (2.0 * math.pi / 3.0) + rng.uniform(-0.25, 0.25, size=3)
    radius = size / 2.0 * rng.uniform(0.85, 1.0, size=3)
    points = np.stack([cx + radius * np.cos(theta), cy + radius * np.sin(theta)], axis=1)
    return _round_polygon(points)


def _segment_polygon(start: np.ndarray, end: np.ndarray, half_width: float) -> Polygon:
    """A rectangle of width 2 * half_width around the segment start -> end (a thick stroke)."""
    direction = end - start
    length = max(float(np.linalg.norm(direction)), 1e-6)
    normal = np.array([-direction[1], direction[0]]) / length * half_width
    points = np.stack([start + normal, end + normal, end - normal, start - normal])
    return _round_polygon(points)


def _limb(origin: np.ndarray, length: float, angle_from_down: float, side: float) -> np.ndarray:
    """End point of a limb leaving `origin` at `angle_from_down` radians from straight down,
    bent towards +x for side=+1 (the figure's left) and towards -x for side=-1."""
    return origin + length * np.array([side * math.sin(angle_from_down), math.cos(angle_from_down)])


def figure_keypoints(
    rng: np.random.Generator, hip_x: float, top_y: float, height: float
) -> np.ndarray:
    """Keypoints (K, 2) of a random stick-figure pose, in FIGURE_KEYPOINT_NAMES order.

    Arms stay on their own side of the body and legs are always spread, so the left/right
    convention holds for every pose; the whole figure leans by at most 8 degrees.
    """
    head = np.array([hip_x, top_y + 0.11 * height])
    neck = np.array([hip_x, top_y + 0.24 * height])
    hip = np.array([hip_x, top_y + 0.56 * height])
    arm_len, leg_len = 0.2 * height, 0.22 * height
    points = {"head": head, "neck": neck, "hip": hip}
    for side, name in ((1.0, "left"), (-1.0, "right")):
        upper = math.radians(rng.uniform(25.0, 150.0))
        lower = float(np.clip(upper + math.radians(rng.uniform(-50.0, 50.0)), 0.35, 2.8))
        points[f"{name}_elbow"] = _limb(neck, arm_len, upper, side)
        points[f"{name}_hand"] = _limb(points[f"{name}_elbow"], arm_len, lower, side)
        thigh = math.radians(rng.uniform(10.0, 35.0))
        shin = float(np.clip(thigh + math.radians(rng.uniform(-10.0, 20.0)), 0.12, 0.8))
        points[f"{name}_knee"] = _limb(hip, leg_len, thigh, side)
        points[f"{name}_foot"] = _limb(points[f"{name}_knee"], leg_len, shin, side)
    keypoints = np.stack([points[name] for name in FIGURE_KEYPOINT_NAMES])
    lean = math.radians(rng.uniform(-8.0, 8.0))
    # rotate the whole pose about the hip
    keypoints = (keypoints - hip) @ _rotation(lean).T + hip
    return np.round(keypoints, 2)


def figure_polygons(keypoints: np.ndarray, height: float) -> list[Polygon]:
    """Thick strokes along the skeleton, round joints, and a filled head disc."""
    half_width = max(0.05 * height, 1.5)
    polygons = [regular_polygon(*keypoints[0], 0.11 * height, num_vertices=20)]
    for first, second in FIGURE_SKELETON:
        polygons.append(_segment_polygon(keypoints[first - 1], keypoints[second - 1], half_width))
    for point in keypoints[1:]:
        polygons.append(regular_polygon(*point, half_width, num_vertices=8))
    return polygons
