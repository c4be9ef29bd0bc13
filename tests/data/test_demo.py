"""Tests of the procedural demo dataset (lightning_pose.data.demo)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from lightning_pose.data.demo import (
    demo_dataset_name,
    ensure_demo_dataset,
    generate_demo_split,
    render_scene,
)
from lightning_pose.data.demo.appearance import FAR_SIDE_DARKEN, depth_shade, sample_appearance
from lightning_pose.data.demo.figures import POINT_NAMES, project_figure, sample_figure, view_of
from lightning_pose.data.demo.render import KEYPOINT_OWNER_PARTS, PART_IDS, draw_person, face_labelled
from lightning_pose.data.demo.scene import LABEL_STRIDE
from lightning_pose.skeletons import COCO

SIZE = (128, 112)  # (W, H): small and non-square to catch width/height mix-ups


@pytest.fixture(scope="module")
def small_split(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("demo_split")
    coco = generate_demo_split(root, 12, seed=5, split="val", image_size=SIZE, max_people=3)
    return root, coco


@pytest.fixture(scope="module")
def scenes() -> list:
    return [render_scene(np.random.default_rng([11, i]), (160, 160), 3) for i in range(30)]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path: Path, small_split) -> None:
    root, _ = small_split
    again = tmp_path / "again"
    generate_demo_split(again, 12, seed=5, split="val", image_size=SIZE, max_people=3)
    a, b = _files(root), _files(again)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == b[k], f"{k} differs between two runs with the same seed"
    other = tmp_path / "other"
    generate_demo_split(other, 12, seed=6, split="val", image_size=SIZE, max_people=3)
    ann = "annotations/person_keypoints_val.json"
    assert (other / ann).read_bytes() != (root / ann).read_bytes()
    # the split name is part of the stream: same seed, other split -> other images
    generate_demo_split(other, 2, seed=5, split="train", image_size=SIZE, max_people=3)
    assert (other / "train" / "000000000001.jpg").read_bytes() != (root / "val" / "000000000001.jpg").read_bytes()


# ----------------------------------------------------------------------------- COCO validity


def test_coco_file_is_valid_and_consistent(small_split) -> None:
    from pycocotools.coco import COCO as PyCOCO

    root, coco = small_split
    path = root / "annotations" / "person_keypoints_val.json"
    assert json.loads(path.read_text()) == coco
    api = PyCOCO(str(path))
    assert sorted(api.getImgIds()) == list(range(1, 13))
    assert [a["id"] for a in coco["annotations"]] == list(range(1, len(coco["annotations"]) + 1))
    cat = coco["categories"][0]
    assert cat["id"] == 1 and cat["name"] == "person"
    assert cat["keypoints"] == list(COCO.keypoints)
    assert [tuple(e) for e in cat["skeleton"]] == [(a + 1, b + 1) for a, b in COCO.skeleton]
    assert min(min(e) for e in cat["skeleton"]) == 1  # 1-based
    w, h = SIZE
    per_image: dict[int, int] = {}
    for img in coco["images"]:
        assert (img["width"], img["height"]) == (w, h)
        pix = cv2.imread(str(root / "val" / img["file_name"]))
        assert pix is not None and pix.shape == (h, w, 3)
    for ann in coco["annotations"]:
        per_image[ann["image_id"]] = per_image.get(ann["image_id"], 0) + 1
        assert ann["category_id"] == 1 and ann["iscrowd"] == 0
        kp = np.array(ann["keypoints"], dtype=np.float64).reshape(17, 3)
        v = kp[:, 2]
        assert set(v.tolist()) <= {0.0, 1.0, 2.0}
        assert ann["num_keypoints"] == int((v > 0).sum())
        assert (v == 2).sum() >= 3, "people with < 3 visible joints must have been removed"
        assert np.all(kp[v == 0, :2] == 0)
        lab = kp[v > 0]
        assert np.all((lab[:, 0] >= 0) & (lab[:, 0] <= w - 1) & (lab[:, 1] >= 0) & (lab[:, 1] <= h - 1))
        bx, by, bw, bh = ann["bbox"]
        assert bw > 0 and bh > 0 and bx >= 0 and by >= 0 and bx + bw <= w + 1e-6 and by + bh <= h + 1e-6
        assert np.all((lab[:, 0] >= bx) & (lab[:, 0] <= bx + bw) & (lab[:, 1] >= by) & (lab[:, 1] <= by + bh))
        assert 0 < ann["area"] <= bw * bh + 1e-6
    assert all(1 <= n <= 3 for n in per_image.values())
    assert len(per_image) == 12  # every image keeps at least one person


# ----------------------------------------------------------------------------- rendering truth


def test_visible_keypoints_sit_on_their_own_body_pixels(scenes) -> None:
    n_vis = n_occ = 0
    for scene in scenes:
        h, w = scene.label_map.shape
        for i, person in enumerate(scene.persons):
            sil = person.silhouette
            assert person.area == sil.sum()
            ys, xs = np.nonzero(sil)
            x, y, bw, bh = person.bbox
            assert xs.min() >= x and xs.max() + 1 <= x + bw + 1e-9 and ys.min() >= y and ys.max() + 1 <= y + bh + 1e-9
            for j, (kx, ky, v) in enumerate(person.keypoints):
                if v == 0:
                    continue
                r, c = int(round(ky)), int(round(kx))
                # every labelled joint lies on the person's own silhouette (drawn before compositing)
                assert sil[r, c], f"joint {COCO.keypoints[j]} of a person is not on its silhouette"
                part = int(scene.label_map[r, c]) - LABEL_STRIDE * (i + 1)
                if v == 2:
                    n_vis += 1
                    assert part in KEYPOINT_OWNER_PARTS[j]
                else:
                    n_occ += 1
                    assert part not in KEYPOINT_OWNER_PARTS[j]
    assert n_vis > 300 and n_occ > 10  # both codes actually occur


def _wrist_brightness(scene, i: int, j: int) -> float:
    grey = cv2.cvtColor(scene.image, cv2.COLOR_BGR2GRAY).astype(np.float64)
    x, y = int(round(scene.persons[i].keypoints[j, 0])), int(round(scene.persons[i].keypoints[j, 1]))
    lab = scene.label_map[max(y - 2, 0) : y + 3, max(x - 2, 0) : x + 3] - LABEL_STRIDE * (i + 1)
    win = grey[max(y - 2, 0) : y + 3, max(x - 2, 0) : x + 3]
    return float(win[np.isin(lab, list(KEYPOINT_OWNER_PARTS[j]))].mean())


def test_no_fixed_left_right_colour_code(scenes) -> None:
    # a fixed "left is brighter" code would be reversed by the flip augmentation (the old generator had one:
    # the brighter wrist was the left one for >= 90 % of people); left/right must come from the view instead
    np.testing.assert_allclose(depth_shade(np.array([100.0, 0.0, 200.0]), 1.0), [70.0, 0.0, 140.0])
    np.testing.assert_allclose(depth_shade(np.array([100.0, 0.0, 200.0]), -0.5), [100.0, 0.0, 200.0])
    assert FAR_SIDE_DARKEN == pytest.approx(0.3)
    left_brighter = total = 0
    for scene in scenes:
        for i, person in enumerate(scene.persons):
            if person.keypoints[9, 2] == 2 and person.keypoints[10, 2] == 2:
                total += 1
                left_brighter += _wrist_brightness(scene, i, 9) > _wrist_brightness(scene, i, 10)
    assert total >= 10
    assert 0.2 <= left_brighter / total <= 0.8, f"left wrist brighter in {left_brighter}/{total} people"


def test_front_of_the_shirt_shows_only_when_facing_the_camera() -> None:
    # same person, same pose and appearance, seen from the front and from the back: the neckline (skin on the
    # torso) and the face are drawn on the front view only
    app = dataclasses.replace(
        sample_appearance(np.random.default_rng(3)),
        shirt=np.array([200.0, 40.0, 30.0]),
        skin=np.array([120.0, 160.0, 210.0]),
        chest_print=None,
        stripes=0.0,
        noise=0.0,
    )
    skin = np.clip(app.skin, 0, 255).astype(np.uint8)
    counts = {}
    for view, yaw in (("front", 0.0), ("back", np.pi)):
        fig3 = sample_figure(np.random.default_rng(4), kind="standing", yaw=yaw)
        assert view_of(fig3) == view
        layer = draw_person(
            project_figure(fig3, 200.0, np.array([120.0, 130.0]), 0.0), app, (240, 260), np.random.default_rng(5)
        )
        torso = layer.parts == PART_IDS["torso"]
        near_skin = (np.abs(layer.colour.astype(int) - skin.astype(int)).max(axis=2) <= 40) & torso
        counts[view] = (int(near_skin.sum()), int((layer.parts == PART_IDS["face"]).sum()))
    assert counts["front"][0] > 30 and counts["front"][0] > 5 * max(counts["back"][0], 1), counts
    assert counts["front"][1] > 0 and counts["back"][1] == 0, counts


def test_views_cover_front_side_and_back(small_split) -> None:
    _, coco = small_split
    views = [a["demo_view"] for a in coco["annotations"]]
    assert set(views) <= {"front", "side", "back"} and len(set(views)) >= 2


def test_left_right_order_follows_the_view() -> None:
    rng = np.random.default_rng(0)
    li, ri = POINT_NAMES.index("left_shoulder"), POINT_NAMES.index("right_shoulder")
    lh, rh = POINT_NAMES.index("left_hip"), POINT_NAMES.index("right_hip")
    for _ in range(10):
        front = project_figure(sample_figure(rng, kind="standing", yaw=0.0), 100.0, np.array([50.0, 60.0]), 0.0)
        back = project_figure(sample_figure(rng, kind="standing", yaw=np.pi), 100.0, np.array([50.0, 60.0]), 0.0)
        # facing the camera the person's left side is on the image's right, seen from behind on its left
        assert front.points[li, 0] > front.points[ri, 0] and front.points[lh, 0] > front.points[rh, 0]
        assert back.points[li, 0] < back.points[ri, 0] and back.points[lh, 0] < back.points[rh, 0]
        np.testing.assert_allclose(front.point("pelvis"), [50.0, 60.0])
        # face rule: nose and eyes are labelled when facing the camera, not when seen from behind
        assert face_labelled(front)[:3].all() and not face_labelled(back)[:3].any()


def test_limb_lengths_match_the_body_shape() -> None:
    rng = np.random.default_rng(1)
    for kind in ("standing", "walking", "arms_raised", "sitting", "bending", "free"):
        fig = sample_figure(rng, kind=kind)
        b = fig.shape
        for side in ("left", "right"):
            for a, c, length in (
                (f"{side}_shoulder", f"{side}_elbow", b.upper_arm),
                (f"{side}_elbow", f"{side}_wrist", b.forearm),
                (f"{side}_hip", f"{side}_knee", b.thigh),
                (f"{side}_knee", f"{side}_ankle", b.shin),
            ):
                assert np.linalg.norm(fig.point(a) - fig.point(c)) == pytest.approx(length, rel=1e-9)
        proj = project_figure(fig, 80.0, np.zeros(2), 0.3)
        # orthographic projection never makes a limb longer than in 3-D
        d2 = np.linalg.norm(proj.point("left_knee") - proj.point("left_hip"))
        assert d2 <= 80.0 * b.thigh + 1e-9


def test_part_ids_are_unique_and_fit_the_label_stride() -> None:
    assert POINT_NAMES[:17] == COCO.keypoints  # the scene labels rows 0..16 as the COCO keypoints
    assert len(set(PART_IDS.values())) == len(PART_IDS)
    assert 0 < min(PART_IDS.values()) and max(PART_IDS.values()) < LABEL_STRIDE


# ----------------------------------------------------------------------------- cache


def test_cache_is_reused_without_rewriting(tmp_path: Path) -> None:
    kw = dict(seed=2, num_train=3, num_val=2, image_size=(96, 80), max_people=2)
    path = ensure_demo_dataset(tmp_path, **kw)
    assert path == tmp_path / "demo-v2-s2-3-2-96x80-p2" == tmp_path / demo_dataset_name(2, 3, 2, (96, 80), 2)
    assert sorted(p.name for p in (path / "train").iterdir()) == [f"{i:012d}.jpg" for i in (1, 2, 3)]
    assert len(list((path / "val").iterdir())) == 2
    assert (path / "annotations" / "person_keypoints_train.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # the temp folder was renamed away
    mtimes = {p: p.stat().st_mtime_ns for p in path.rglob("*")}
    t0 = time.perf_counter()
    assert ensure_demo_dataset(tmp_path, **kw) == path
    assert time.perf_counter() - t0 < 0.5
    assert {p: p.stat().st_mtime_ns for p in path.rglob("*")} == mtimes


def test_default_root_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIGHTNING_POSE_CACHE", str(tmp_path / "cache"))
    path = ensure_demo_dataset(seed=0, num_train=1, num_val=1, image_size=(64, 64), max_people=1)
    assert path.parent == tmp_path / "cache"


def test_leftover_temp_dirs_are_not_complete_and_user_folders_are_kept(tmp_path: Path) -> None:
    kw = dict(seed=1, num_train=1, num_val=1, image_size=(64, 64), max_people=1)
    name = demo_dataset_name(1, 1, 1, (64, 64), 1)
    # an interrupted run of ours (dead writer) and a user's folder with a similar name
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(proc.stdout)
    stale = tmp_path / f".{name}.tmp-dead"
    (stale / "train").mkdir(parents=True)
    (stale / "DEMO_COMPLETE.json").write_text(json.dumps({"version": 1}))
    (stale / ".demo_tmp_owner.json").write_text(json.dumps({"host": os.uname().nodename, "pid": dead_pid}))
    users = tmp_path / f".{name}.tmp-mine"
    users.mkdir()
    (users / "notes.txt").write_text("keep me")
    path = ensure_demo_dataset(tmp_path, **kw)
    assert path == tmp_path / name and (path / "val" / "000000000001.jpg").is_file()
    assert not stale.exists()
    assert (users / "notes.txt").read_text() == "keep me"


def test_incomplete_final_folder_is_refused_and_untouched(tmp_path: Path) -> None:
    name = demo_dataset_name(0, 1, 1, (64, 64), 1)
    half = tmp_path / name
    (half / "train").mkdir(parents=True)
    (half / "train" / "x.jpg").write_bytes(b"user data")
    with pytest.raises(FileExistsError, match=name):
        ensure_demo_dataset(tmp_path, seed=0, num_train=1, num_val=1, image_size=(64, 64), max_people=1)
    assert (half / "train" / "x.jpg").read_bytes() == b"user data"
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temp folder left behind


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(split="../x"), "split"),
        (dict(image_size=(16, 64)), "image_size"),
        (dict(max_people=0), "max_people"),
        (dict(seed=-1), "seed"),
    ],
)
def test_bad_arguments_raise_clear_errors(tmp_path: Path, kwargs: dict, match: str) -> None:
    args = dict(seed=0, split="val", image_size=(64, 64), max_people=1) | kwargs
    with pytest.raises(ValueError, match=match):
        generate_demo_split(tmp_path, 1, **args)
