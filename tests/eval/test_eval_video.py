from __future__ import annotations

import math

import numpy as np
import pytest

from sam3_edge.eval.video import boundary_f, disk, j_and_f, object_j_and_f, region_j, seg2bmap


def _box(x0, y0, x1, y1, size=100):
    m = np.zeros((size, size), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def test_seg2bmap_hand_computed():
    seg = np.zeros((4, 4), bool)
    seg[1:3, 1:3] = True
    expected = np.array([[1, 1, 1, 0], [1, 0, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0]], bool)
    np.testing.assert_array_equal(seg2bmap(seg), expected)


def test_disk_matches_skimage_footprint():
    np.testing.assert_array_equal(disk(1), np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool))
    expected2 = np.array([[0, 0, 1, 0, 0], [0, 1, 1, 1, 0], [1, 1, 1, 1, 1], [0, 1, 1, 1, 0], [0, 0, 1, 0, 0]], bool)
    np.testing.assert_array_equal(disk(2), expected2)


def _boundary_f_bruteforce(pred, gt, radius):
    """Independent check: a boundary pixel matches if one of the other's is within Euclidean distance r."""
    bp, bg = np.argwhere(seg2bmap(pred)), np.argwhere(seg2bmap(gt))
    dist = np.sqrt(((bp[:, None, :] - bg[None, :, :]) ** 2).sum(-1))
    p = (dist.min(1) <= radius).mean()
    r = (dist.min(0) <= radius).mean()
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def test_boundary_f_tolerance_and_edge_cases():
    gt = _box(20, 20, 60, 60)
    assert boundary_f(gt, gt) == 1.0
    # DAVIS tolerance on 100x100: ceil(0.008 * 141.4) = 2 px; a 2-px shift is within it, a 10-px shift is not
    assert math.ceil(0.008 * np.linalg.norm((100, 100))) == 2
    assert boundary_f(_box(22, 20, 62, 60), gt) == 1.0
    shifted = _box(30, 20, 70, 60)
    f = boundary_f(shifted, gt)
    assert 0 < f < 1
    assert f == pytest.approx(_boundary_f_bruteforce(shifted, gt, 2))
    empty = np.zeros_like(gt)
    assert boundary_f(empty, empty) == 1.0 and boundary_f(empty, gt) == 0.0 and boundary_f(gt, empty) == 0.0
    assert region_j(empty, empty) == 1.0 and region_j(empty, gt) == 0.0


def test_object_and_global_j_and_f():
    gt = [_box(20, 20, 60, 60)] * 4
    perfect = object_j_and_f(gt, gt)
    assert perfect == (1.0, 1.0)
    # skip_first_and_last: the wrong first and last frames are not counted
    preds = [np.zeros((100, 100), bool), gt[1], gt[2], np.zeros((100, 100), bool)]
    assert object_j_and_f(preds, gt) == (1.0, 1.0)
    assert object_j_and_f(preds, gt, skip_first_and_last=False) == (0.5, 0.5)
    assert object_j_and_f(gt[:2], gt[:2]) is None
    g = j_and_f([(1.0, 0.8), (0.5, 0.4)])
    assert g["J"].value == pytest.approx(0.75) and g["F"].value == pytest.approx(0.6)
    assert g["J_and_F"].value == pytest.approx(0.675)
    assert not j_and_f([])["J_and_F"].defined
