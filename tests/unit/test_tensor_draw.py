"""Drawing into image tensors (the GPU video path draws with these; here on the CPU)."""
from __future__ import annotations

import torch

from plugrcnn.inference.tensor_draw import draw_boxes_on_tensor, draw_keypoints_on_tensor


def test_box_outline_is_drawn_inside_the_edges_and_the_interior_is_untouched() -> None:
    image = torch.zeros(3, 40, 50, dtype=torch.uint8)
    drawn = draw_boxes_on_tensor(image, torch.tensor([[10.0, 5.0, 30.0, 25.0]]), [(200, 100, 50)], width=2)
    assert image.sum() == 0  # the input is not modified
    painted = drawn[0] > 0
    assert painted[5:7, 10:31].all() and painted[24:26, 10:31].all()      # top and bottom, 2 px
    assert painted[5:26, 10:12].all() and painted[5:26, 29:31].all()      # left and right, 2 px
    assert not painted[7:24, 12:29].any() and not painted[:5].any() and not painted[:, 31:].any()
    assert drawn[:, 5, 10].tolist() == [200, 100, 50]
    assert int(painted.sum()) == 2 * 21 * 2 + 2 * 17 * 2


def test_boxes_outside_the_image_are_clipped_and_no_boxes_is_a_copy() -> None:
    image = torch.zeros(3, 20, 20, dtype=torch.uint8)
    drawn = draw_boxes_on_tensor(image, torch.tensor([[-5.0, -5.0, 40.0, 40.0]]), [(9, 9, 9)], width=1)
    assert drawn[0, 0].all() and drawn[0, 19].all() and drawn[0, :, 0].all() and not drawn[0, 1:19, 1:19].any()
    assert torch.equal(draw_boxes_on_tensor(image, torch.zeros(0, 4), []), image)


def test_keypoints_and_skeleton_lines_are_painted() -> None:
    image = torch.zeros(3, 60, 60, dtype=torch.uint8)
    points = torch.tensor([[[10.0, 10.0], [50.0, 10.0], [30.0, 50.0]]])  # (D=1, K=3, 2)
    drawn = draw_keypoints_on_tensor(image, points, [(0, 1)], (255, 64, 64), radius=2, width=1)
    painted = drawn[0] == 255
    assert painted[8:13, 8:13].all() and painted[48:53, 28:33].all()  # 5x5 squares
    assert painted[10, 10:51].all()          # the line from keypoint 0 to 1
    assert not painted[30, 10:50].any()      # no line to keypoint 2 (not connected)
    assert drawn[1, 10, 30] == 64 and drawn[2, 10, 30] == 64


def test_keypoints_near_the_border_do_not_fail() -> None:
    image = torch.zeros(3, 16, 16, dtype=torch.uint8)
    drawn = draw_keypoints_on_tensor(image, torch.tensor([[[0.0, 15.0], [15.0, 0.0]]]), [(0, 1)], (1, 2, 3),
                                     radius=3, width=3)
    assert drawn[0, 15, 0] == 1 and drawn[0, 0, 15] == 1 and drawn[0, 8, 7:9].max() == 1
