"""One colour per class label, shared by every head that draws (boxes and masks agree)."""
from __future__ import annotations


def class_color(label: int) -> tuple[int, int, int]:
    return ((37 * label) % 255, (17 * label + 90) % 255, (91 * label + 160) % 255)
