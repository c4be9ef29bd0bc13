"""Decoding into reused memory (``DecodeBuffer``, issue 14): the same pixels as a plain decode, the same samples, and
never a silent failure (``cv2.imread`` into given memory leaves it untouched when it cannot decode)."""

from __future__ import annotations

import dataclasses
import pickle
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from lightning_pose.data.datasets import TopDownDataset
from lightning_pose.data.readers import read_coco
from lightning_pose.data.records import DatasetError
from lightning_pose.data.transforms.image_io import DecodeBuffer, read_image


def _first_jpeg(shared_data: Path) -> Path:
    return sorted((shared_data / "coco").rglob("*.jpg"))[0]


@pytest.mark.parametrize("downscale", [1, 2, 4, 8])
def test_decode_into_the_buffer_gives_the_plain_decode(shared_data: Path, downscale: int) -> None:
    file = _first_jpeg(shared_data)
    plain, is_bgr = read_image(file, downscale=downscale)
    buffer = DecodeBuffer()
    for _ in range(2):  # the second decode reuses the memory of the first
        got, got_bgr = read_image(file, downscale=downscale, buffer=buffer, shape=plain.shape[:2])
        assert got_bgr == is_bgr and np.array_equal(got, plain)
        assert np.shares_memory(got, buffer.view(plain.shape))


def test_failed_decodes_into_the_buffer_raise_instead_of_returning_old_pixels(
    shared_data: Path, tmp_path: Path
) -> None:
    file = _first_jpeg(shared_data)
    good, _ = read_image(file)
    buffer = DecodeBuffer()
    read_image(file, buffer=buffer, shape=good.shape[:2])  # the buffer now holds a real image of that size
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(DatasetError, match="could not decode"):
        read_image(bad, record="image 7", buffer=buffer, shape=good.shape[:2])
    with pytest.raises(DatasetError, match="does not exist"):
        read_image(tmp_path / "missing.jpg", buffer=buffer, shape=good.shape[:2])
    # a wrong expected size: decoded the plain way, at its real size (the caller's size check then refuses it)
    other, _ = read_image(file, buffer=buffer, shape=(good.shape[0] + 1, good.shape[1]))
    assert other.shape == good.shape and np.array_equal(other, good)
    assert not np.shares_memory(other, buffer.view(good.shape))


def test_the_buffer_is_per_thread_and_pickles_empty() -> None:
    buffer = DecodeBuffer()
    mine = buffer.view((4, 5, 3))
    theirs: list[np.ndarray] = []
    t = threading.Thread(target=lambda: theirs.append(buffer.view((4, 5, 3))))
    t.start()
    t.join()
    assert not np.shares_memory(mine, theirs[0])
    assert np.shares_memory(mine, buffer.view((2, 2, 3)))  # smaller views reuse the block
    bigger = buffer.view((40, 50, 3))
    assert bigger.shape == (40, 50, 3) and bigger.flags.c_contiguous
    again = pickle.loads(pickle.dumps(buffer))
    assert getattr(again._local, "block", None) is None and again.view((1, 1, 3)).shape == (1, 1, 3)


def test_samples_are_the_same_with_and_without_the_reused_memory(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = shared_data / "coco"
    records = read_coco(data / "test_coco.json", data).records
    aug = {"shift_factor": 0.1, "shift_prob": 0.3, "occlusion_prob": 0.3}
    reused = TopDownDataset(records, "coco", (96, 128), aug, seed=3)
    samples = [reused[i % len(reused)] for i in range(2 * len(reused))]
    assert getattr(reused._decode_buffer._local, "block", None) is not None  # the memory was used

    plain_load = TopDownDataset.load_image
    monkeypatch.setattr(TopDownDataset, "load_image", lambda self, i, d=1, reuse_memory=False: plain_load(self, i, d))
    plain = TopDownDataset(records, "coco", (96, 128), aug, seed=3)
    for i, s in enumerate(samples):
        t = plain[i % len(plain)]
        assert s.keys() == t.keys()
        for k in s:  # head_size is NaN on COCO
            assert np.array_equal(s[k].numpy(), t[k].numpy(), equal_nan=s[k].is_floating_point()), (i, k)


def test_a_record_with_a_wrong_size_is_refused_with_the_reused_memory(shared_data: Path) -> None:
    data = shared_data / "coco"
    records = read_coco(data / "test_coco.json", data).records
    wrong = [dataclasses.replace(records[0], width=records[0].width + 2)] + list(records[1:])
    ds = TopDownDataset(wrong, "coco", (96, 128), {}, seed=0)
    ds[len(ds) - 1]  # another image first: the buffer holds its pixels
    with pytest.raises(DatasetError, match="annotation says"):
        ds[0]
    assert cv2.imread(str(records[0].file)) is not None
