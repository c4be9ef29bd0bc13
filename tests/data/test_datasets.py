"""TopDownDataset / BottomUpDataset on the shared real samples and hand-built records."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image
from torch.utils.data import default_collate

from lightning_pose.data import geometry as g
from lightning_pose.data.datasets import BottomUpDataset, TopDownDataset, segmentation_to_ignore
from lightning_pose.data.datasets.seeding import WorkerSeeder
from lightning_pose.data.readers import read_coco, read_detections, read_mpii
from lightning_pose.data.records import DatasetError, ImageRecord, PersonRecord
from lightning_pose.data.transforms import denormalize_image

TOPDOWN_KEYS = {
    "image": (torch.uint8, (3, 256, 192)),  # RGB grey levels; normalised on the device (normalize_batch)
    "keypoints": (torch.float32, (17, 3)),
    "crop_to_image": (torch.float64, (2, 3)),
    "gt_keypoints": (torch.float64, (17, 3)),
    "bbox": (torch.float64, (4,)),
    "bbox_score": (torch.float64, ()),
    "area": (torch.float64, ()),
    "crop_area": (torch.float64, ()),
    "head_size": (torch.float64, ()),
    "sample_id": (torch.int64, ()),
    "image_id": (torch.int64, ()),
    "ann_id": (torch.int64, ()),
    "source_index": (torch.int64, ()),
    "flipped": (torch.bool, ()),
}


@pytest.fixture(scope="module")
def coco(shared_data: Path):
    return read_coco(shared_data / "coco" / "test_coco.json", shared_data / "coco")


@pytest.fixture(scope="module")
def coco_json(shared_data: Path) -> dict:
    return json.loads((shared_data / "coco" / "test_coco.json").read_text())


def _bilinear(img: np.ndarray, x: float, y: float) -> np.ndarray:
    x0, y0 = int(math.floor(x)), int(math.floor(y))
    ax, ay = x - x0, y - y0
    p = img.astype(np.float64)
    return (
        (1 - ax) * (1 - ay) * p[y0, x0]
        + ax * (1 - ay) * p[y0, x0 + 1]
        + (1 - ax) * ay * p[y0 + 1, x0]
        + ax * ay * p[y0 + 1, x0 + 1]
    )


def test_topdown_eval_samples_match_the_annotations(coco, coco_json, shared_data: Path) -> None:
    ds = TopDownDataset(coco.records, "coco", (192, 256), None)
    anns = [a for a in coco_json["annotations"] if not a["iscrowd"] and a["num_keypoints"] > 0]
    assert len(ds) == len(anns) == 12
    by_id = {a["id"]: a for a in anns}
    images = {i["id"]: i for i in coco_json["images"]}
    for i in (0, 3, 11):
        s = ds[i]
        assert set(s) == set(TOPDOWN_KEYS)
        for key, (dtype, shape) in TOPDOWN_KEYS.items():
            assert s[key].dtype == dtype and tuple(s[key].shape) == shape, key
        ann = by_id[int(s["ann_id"])]
        assert int(s["image_id"]) == ann["image_id"] and int(s["sample_id"]) == i
        np.testing.assert_allclose(s["bbox"].numpy(), ann["bbox"])
        assert float(s["area"]) == pytest.approx(ann["area"]) and float(s["bbox_score"]) == 1.0
        assert math.isnan(float(s["head_size"])) and not bool(s["flipped"])
        gt = np.asarray(ann["keypoints"], np.float64).reshape(17, 3)
        np.testing.assert_allclose(s["gt_keypoints"][:, 2].numpy(), gt[:, 2])
        lab = gt[:, 2] > 0
        np.testing.assert_allclose(s["gt_keypoints"].numpy()[lab, :2], gt[lab, :2])
        # hand-computed crop box: aspect fix to 0.75, x1.25; its centre is the input centre
        x, y, w, h = ann["bbox"]
        w2, h2 = (w, w / 0.75) if w > 0.75 * h else (h * 0.75, h)
        assert float(s["crop_area"]) == pytest.approx(w2 * 1.25 * h2 * 1.25)
        a = s["crop_to_image"].numpy()
        np.testing.assert_allclose(g.apply_affine(a, [[95.5, 127.5]]), [[x + w / 2, y + h / 2]], atol=1e-9)
        np.testing.assert_allclose(a[0, 0], w2 * 1.25 / 192, rtol=1e-12)
        # keypoints in the input frame map back onto the annotation
        np.testing.assert_allclose(
            g.apply_affine(a, s["keypoints"].numpy()[lab, :2].astype(np.float64)), gt[lab, :2], atol=1e-3
        )
        # pixels: RGB order, from the right place (independent decoder: PIL)
        pil = np.asarray(Image.open(shared_data / "coco" / images[ann["image_id"]]["file_name"]).convert("RGB"))
        crop = denormalize_image(s["image"].numpy())
        for u, v in ((95, 127), (60, 200), (150, 40)):
            sx, sy = g.apply_affine(a, [[u, v]])[0]
            if 1 <= sx < pil.shape[1] - 2 and 1 <= sy < pil.shape[0] - 2:
                assert np.abs(crop[v, u].astype(float) - _bilinear(pil, sx, sy)).max() <= 6


def test_topdown_detection_samples(coco, shared_data: Path) -> None:
    det_file = shared_data / "coco" / "test_coco_det_AP_H_56.json"
    raw = json.loads(det_file.read_text())
    dets = read_detections(det_file, image_ids={r.image_id for r in coco.records})
    ds = TopDownDataset(coco.records, "coco", (192, 256), None, detections=dets)
    assert len(ds) == len(raw)
    s = ds[5]
    assert int(s["ann_id"]) == 5 and int(s["image_id"]) == raw[5]["image_id"]
    assert float(s["bbox_score"]) == pytest.approx(raw[5]["score"])
    np.testing.assert_allclose(s["bbox"].numpy(), raw[5]["bbox"])
    assert float(s["area"]) == 0.0 and float(s["gt_keypoints"].abs().sum()) == 0.0
    assert int(s["source_index"]) == -1


def test_topdown_train_collate_and_seeding(coco) -> None:
    ds = TopDownDataset(coco.records, "coco", (192, 256), {}, seed=3)
    assert ds.train and len(ds) == 12
    # the stream reseeds when torch.initial_seed() changes: start from a seed that is not the one re-set below
    # (an earlier test may have left the process seed at 0, and then manual_seed(0) would not restart the stream)
    torch.manual_seed(12345)
    batch = default_collate([ds[i] for i in range(4)])
    assert batch["image"].shape == (4, 3, 256, 192) and batch["crop_to_image"].shape == (4, 2, 3)
    torch.manual_seed(0)
    first = [ds[i]["crop_to_image"] for i in range(3)]
    torch.manual_seed(1)
    other = [ds[i]["crop_to_image"] for i in range(3)]
    torch.manual_seed(0)
    again = [ds[i]["crop_to_image"] for i in range(3)]
    for a, b in zip(first, again):
        torch.testing.assert_close(a, b)
    assert any(not torch.equal(a, b) for a, b in zip(first, other))


def test_worker_seeder_reseeds_only_on_change(monkeypatch) -> None:
    calls = []

    class T:
        def reseed(self, seed: int) -> None:
            calls.append(seed)

    seeder, t = WorkerSeeder(2), T()
    monkeypatch.setattr(torch, "initial_seed", lambda: 100)
    seeder(t), seeder(t)
    monkeypatch.setattr(torch, "initial_seed", lambda: 101)
    seeder(t)
    assert calls == [2 * 1_000_003 + 100, 2 * 1_000_003 + 101]


def test_mpii_samples_use_center_scale_and_head_size(shared_data: Path) -> None:
    mat = shared_data / "mpii" / "mpii_gt_val.mat"
    res = read_mpii(shared_data / "mpii" / "test_mpii.json", shared_data / "mpii", headbox_file=mat)
    raw = json.loads((shared_data / "mpii" / "test_mpii.json").read_text())
    boxes = scipy.io.loadmat(str(mat))["headboxes_src"]  # (2, 2, N), 1-based corners
    ds = TopDownDataset(res.records, "mpii", (256, 256), None)
    assert len(ds) == len(raw) == 5
    for i in range(5):
        s = ds[i]
        j = int(s["source_index"])
        c = np.asarray(raw[j]["center"], np.float64) - 1.0
        sc = raw[j]["scale"]
        a = s["crop_to_image"].numpy()
        np.testing.assert_allclose(g.apply_affine(a, [[127.5, 127.5]]), [[c[0], c[1] + 15 * sc]], atol=1e-6)
        np.testing.assert_allclose(a[0, 0], sc * 1.25 * 200 / 256, rtol=1e-9)
        diag = np.linalg.norm(boxes[1, :, j] - boxes[0, :, j])
        assert float(s["head_size"]) == pytest.approx(0.6 * diag, rel=1e-9)


def _tiny_record(path: Path, keypoints: np.ndarray | None = None) -> ImageRecord:
    kp = keypoints if keypoints is not None else np.tile([[10.0, 10.0, 2.0]], (17, 1))
    person = PersonRecord(keypoints=kp, bbox=np.array([2.0, 2.0, 20.0, 20.0]), area=400.0, id=7)
    return ImageRecord(image_id=1, file=path, width=32, height=32, persons=[person])


def test_unreadable_image_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    ds = TopDownDataset([_tiny_record(bad)], "coco", (32, 32), None)
    with pytest.raises(DatasetError, match="broken.jpg"):
        ds[0]
    missing = TopDownDataset([_tiny_record(tmp_path / "nothere.jpg")], "coco", (32, 32), None)
    with pytest.raises(DatasetError, match="nothere.jpg.*does not exist"):
        missing[0]


def test_wrong_keypoint_count_is_a_dataset_error(tmp_path: Path) -> None:
    rec = _tiny_record(tmp_path / "x.jpg", np.zeros((16, 3)))
    with pytest.raises(DatasetError, match="annotation 7.*expected \\(17, 3\\)"):
        TopDownDataset([rec], "coco", (32, 32), None)


def test_custom_image_reader_and_selection_rules(tmp_path: Path) -> None:
    rec = _tiny_record(tmp_path / "x.jpg")
    rec.persons.append(PersonRecord(keypoints=np.zeros((17, 3)), bbox=np.array([0.0, 0, 5, 5]), area=25.0, id=8))
    rec.persons.append(
        PersonRecord(
            keypoints=np.tile([[3.0, 3.0, 2.0]], (17, 1)), bbox=np.array([0.0, 0, 9, 9]), area=81.0, iscrowd=True, id=9
        )
    )
    reader_calls = []

    def reader(p: Path) -> np.ndarray:
        reader_calls.append(p)
        img = np.zeros((32, 32, 3), np.uint8)
        img[..., 0] = 255
        return img

    ds = TopDownDataset([rec], "coco", (16, 16), None, image_reader=reader)
    assert [it.ann_id for it in ds.items] == [7]  # no crowd, no keypoint-less person
    s = ds[0]
    assert reader_calls == [tmp_path / "x.jpg"]
    assert denormalize_image(s["image"].numpy())[8, 8].tolist() == [255, 0, 0]


def test_bottomup_sample_on_coco(coco, coco_json) -> None:
    ds = BottomUpDataset(coco.records, "coco", (256, 256), None)
    assert len(ds) == 4
    idx = [r.image_id for r in ds.records].index(40083)
    s = ds[idx]
    assert set(s) == {
        "image",
        "keypoints",
        "num_persons",
        "mask",
        "image_to_input",
        "input_to_image",
        "image_id",
        "sample_id",
    }
    assert s["image"].shape == (3, 256, 256) and s["keypoints"].shape == (30, 17, 3)
    assert s["keypoints"].dtype == torch.float32 and s["mask"].dtype == torch.uint8
    assert s["image_to_input"].dtype == torch.float64 and int(s["image_id"]) == 40083
    anns = [a for a in coco_json["annotations"] if a["image_id"] == 40083]
    learn = sorted([a for a in anns if a["num_keypoints"] > 0], key=lambda a: -a["num_keypoints"])
    assert int(s["num_persons"]) == len(learn) == 2
    assert float(s["keypoints"][2:].abs().sum()) == 0.0
    m = s["image_to_input"].numpy()
    np.testing.assert_allclose(g.compose_affine(s["input_to_image"].numpy(), m), [[1, 0, 0], [0, 1, 0]], atol=1e-12)
    for n, ann in enumerate(learn):
        gt = np.asarray(ann["keypoints"], np.float64).reshape(17, 3)
        lab = gt[:, 2] > 0
        np.testing.assert_allclose(s["keypoints"][n].numpy()[lab, :2], g.apply_affine(m, gt[lab, :2]), atol=1e-3)
    # the keypoint-less person (annotation 1202706) is masked out: test the centre of its box
    ignored = [a for a in anns if a["num_keypoints"] == 0][0]
    x, y, w, h = ignored["bbox"]
    cx, cy = g.apply_affine(m, [[x + w / 2, y + h / 2]])[0]
    assert int(s["mask"][int(round(cy)), int(round(cx))]) == 0
    assert float(s["mask"].float().mean()) > 0.95


def test_bottomup_crowd_rle_and_truncation(tmp_path: Path) -> None:
    from pycocotools import mask as mask_utils

    img_path = tmp_path / "img.png"
    Image.fromarray(np.full((40, 60, 3), 90, np.uint8)).save(img_path)
    persons = [
        PersonRecord(
            keypoints=np.tile([[30.0, 20.0, 2.0]], (17, 1)), bbox=np.array([20.0, 10, 20, 20]), area=400.0, id=i + 1
        )
        for i in range(3)
    ]
    crowd = np.zeros((40, 60), np.uint8, order="F")
    crowd[0:10, 0:20] = 1
    rle = mask_utils.encode(crowd)
    rle["counts"] = rle["counts"].decode()
    persons.append(
        PersonRecord(keypoints=np.zeros((17, 3)), bbox=np.array([0.0, 0, 20, 10]), area=200.0, iscrowd=True, id=99)
    )
    rec = ImageRecord(image_id=5, file=img_path, width=60, height=40, persons=persons)
    ds = BottomUpDataset([rec], "coco", (60, 40), None, max_persons=2, segmentations={99: rle})
    with pytest.warns(UserWarning, match="keeping 2"):
        s = ds[0]
    assert int(s["num_persons"]) == 2 and s["keypoints"].shape == (2, 17, 3)
    mask = s["mask"].numpy()
    # identity geometry (same size): the crowd RLE region is ignored, as are the persons beyond max_persons
    assert mask[0:10, 0:20].max() == 0 and mask[30:, 45:].min() == 1
    assert mask[15, 30] == 0  # third person (truncated) box masked
    polys, m = segmentation_to_ignore([[0, 0, 10, 0, 10, 10]], 40, 60)
    assert m is None and polys[0].shape == (3, 2)


def _blob_centroid(img: np.ndarray, x: float, y: float, r: int = 6) -> tuple[float, float]:
    x0, y0 = int(round(x)) - r, int(round(y)) - r
    win = img[y0 : y0 + 2 * r + 1, x0 : x0 + 2 * r + 1].astype(np.float64)
    win = np.clip(win - np.median(img), 0, None)
    yy, xx = np.mgrid[0 : win.shape[0], 0 : win.shape[1]]
    return x0 + (win * xx).sum() / win.sum(), y0 + (win * yy).sum() / win.sum()


@pytest.mark.parametrize("flip", [False, True])
def test_reduced_jpeg_decoding_keeps_the_geometry(tmp_path: Path, flip: bool) -> None:
    import cv2

    # three Gaussian blobs in a JPEG; a crop that shrinks by exactly 2 uses the 1/2-resolution decode
    w, h = 401, 301
    pts = np.array([[150.0, 120.0], [230.0, 140.0], [190.0, 190.0]])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w), np.float64)
    for x, y in pts:
        img += 220 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 3.0**2))
    path = tmp_path / "blobs.jpg"
    cv2.imwrite(str(path), np.repeat(np.rint(img)[..., None], 3, 2).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 100])
    kp = np.zeros((17, 3))
    kp[[0, 9, 10], :2] = pts  # nose, left wrist, right wrist
    kp[[0, 9, 10], 2] = 2
    person = PersonRecord(keypoints=kp, bbox=np.array([139.0, 104.0, 102.4, 102.4]), area=1.0, id=1)
    rec = ImageRecord(image_id=1, file=path, width=0, height=0, persons=[person])  # size from the header
    aug = {
        "flip_prob": 1.0 if flip else 0.0,
        "scale_factor": 0.0,
        "rotation_factor": 0.0,
        "half_body_prob": 0.0,
        "color_jitter_prob": 0.0,
        "blur_prob": 0.0,
        "noise_prob": 0.0,
    }
    fast = TopDownDataset([rec], "coco", (64, 64), aug, train=True)
    full = TopDownDataset([rec], "coco", (64, 64), aug, train=True, reduced_decoding=False)
    params = fast.transform.sample_params(*fast.center_scale(0), kp)
    assert fast.transform.decode_downscale(params) == 2 and fast.image_size(0) == (w, h)
    a, b = fast[0], full[0]
    torch.testing.assert_close(a["crop_to_image"], b["crop_to_image"])
    torch.testing.assert_close(a["keypoints"], b["keypoints"])
    assert bool(a["flipped"]) == flip
    ia = denormalize_image(a["image"].numpy())[..., 1]
    ib = denormalize_image(b["image"].numpy())[..., 1]
    for j in (0, 9, 10):
        x, y = a["keypoints"][j, :2].tolist()
        ca, cb = _blob_centroid(ia, x, y), _blob_centroid(ib, x, y)
        np.testing.assert_allclose(ca, [x, y], atol=0.08)  # a (f-1)/2 offset error would be 0.25 px here
        np.testing.assert_allclose(cb, [x, y], atol=0.08)
