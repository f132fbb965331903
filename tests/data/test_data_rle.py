from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from sam3_edge.data.errors import DataError
from sam3_edge.data.rle import check_rle, decode_rle, encode_mask, rle_box_xyxy, rle_run_lengths, validated_rle


def test_encode_decode_round_trip_and_box(rng):
    mask = rng.random((37, 53)) > 0.6
    rle = encode_mask(mask)
    assert isinstance(rle["counts"], str) and rle["size"] == [37, 53]
    np.testing.assert_array_equal(decode_rle(rle), mask)
    empty = encode_mask(np.zeros((5, 7), bool))
    assert not decode_rle(empty).any()
    box_mask = np.zeros((20, 30), bool)
    box_mask[3:9, 4:15] = True
    assert rle_box_xyxy(encode_mask(box_mask)) == (4.0, 3.0, 15.0, 9.0)


def test_run_lengths_match_pycocotools_uncompressed(rng):
    mask = rng.random((40, 40)) > 0.5
    compressed = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    runs = rle_run_lengths(compressed["counts"].decode())
    assert sum(runs) == 1600
    # re-encoding the runs as an uncompressed RLE gives back the same mask
    back = mask_utils.decode(mask_utils.frPyObjects({"size": [40, 40], "counts": runs}, 40, 40))
    np.testing.assert_array_equal(back.astype(bool), mask)


@pytest.mark.parametrize(
    ("rle", "message"),
    [
        ({"size": [10, 12], "counts": "0"}, "add up to 0, not h\\*w = 120"),  # pycocotools would decode garbage
        ({"size": [10, 12], "counts": [100, 30]}, "add up to 130"),
        ({"size": [10, 12], "counts": "\x7f"}, "invalid character"),
        ({"size": [10], "counts": "0"}, "is not \\[h, w\\]"),
        ({"counts": "0"}, "not an RLE dict"),
    ],
)
def test_bad_rle_is_rejected(rle, message):
    with pytest.raises(ValueError, match=message):
        check_rle(rle)
    with pytest.raises(ValueError):
        decode_rle(rle)


def test_rle_size_differs_from_image_is_a_size_mismatch():
    rle = encode_mask(np.ones((4, 6), bool))
    check_rle(rle, size=(4, 6))
    with pytest.raises(DataError) as err:
        validated_rle(rle, size=(6, 4), path="x.json annotation 0")
    assert err.value.reason == "size_mismatch" and "x.json" in str(err.value)
    bad = {"size": [4, 6], "counts": "00"}
    with pytest.raises(DataError) as err:
        validated_rle(bad, size=(4, 6), path="x.json")
    assert err.value.reason == "bad_rle"
