"""Constant-predictor baseline and left/right swap rate (lightning_pose.evaluation.baseline)."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_pose.evaluation.baseline import (
    ConstantPosePredictor,
    constant_baseline_metrics,
    left_right_swaps,
)
from lightning_pose.skeletons import COCO


def _coco(persons: list[tuple[np.ndarray, list[float]]]) -> dict:
    anns = [
        {
            "id": i + 1,
            "image_id": i + 1,
            "category_id": 1,
            "iscrowd": 0,
            "bbox": box,
            "area": box[2] * box[3] * 0.5,
            "keypoints": kp.reshape(-1).tolist(),
            "num_keypoints": int((kp[:, 2] > 0).sum()),
        }
        for i, (kp, box) in enumerate(persons)
    ]
    return {
        "images": [{"id": i + 1, "width": 200, "height": 200, "file_name": f"{i}.jpg"} for i in range(len(anns))],
        "annotations": anns,
        "categories": [{"id": 1, "name": "person"}],
    }


def test_mean_pose_is_in_box_units_and_ignores_unlabelled_joints() -> None:
    kp = np.zeros((2, 2, 3))
    kp[0] = [[10, 20, 2], [0, 0, 0]]  # box (0, 0, 100, 50): joint 0 at (0.1, 0.4), joint 1 unlabelled
    kp[1] = [[30, 30, 1], [60, 40, 2]]  # box (10, 20, 40, 20): joint 0 at (0.5, 0.5), joint 1 at (1.25, 1.0)
    model = ConstantPosePredictor.fit(kp, np.array([[0, 0, 100, 50], [10, 20, 40, 20]], float))
    np.testing.assert_allclose(model.mean_pose, [[0.3, 0.45], [1.25, 1.0]])
    np.testing.assert_array_equal(model.counts, [2, 1])
    np.testing.assert_allclose(model.predict(np.array([[100, 100, 10, 20]], float)), [[[103, 109], [112.5, 120]]])


def test_swaps_collapses_and_ambiguous_pairs() -> None:
    gt = np.array(
        [
            [[10, 50, 2], [30, 50, 2]],  # well separated pair
            [[20, 50, 2], [20.5, 50, 2]],  # GT joints 0.5 px apart in a 100 px box: ambiguous, skipped
            [[10, 50, 2], [30, 50, 0]],
        ],
        float,
    )  # one joint unlabelled: skipped
    boxes = np.array([[0, 0, 100, 100]] * 3, float)
    straight = gt[:, :, :2].copy()
    crossed = straight[:, ::-1]
    collapsed = np.repeat(straight.mean(axis=1, keepdims=True), 2, axis=1)
    for pred, swapped, coll in ((straight, 0, 0), (crossed, 1, 0), (collapsed, 0, 1)):
        s = left_right_swaps(pred, gt, boxes, [(0, 1)])
        assert (s.pairs, s.swapped, s.collapsed) == (1, swapped, coll)
    assert left_right_swaps(crossed, gt, boxes, [(0, 1)]).swap_rate == 1.0


def test_baseline_metrics_perfect_when_every_person_has_the_mean_pose() -> None:
    rng = np.random.default_rng(0)
    rel = rng.uniform(0.1, 0.9, (17, 2))
    persons = []
    for _ in range(6):
        box = [
            float(rng.uniform(0, 50)),
            float(rng.uniform(0, 50)),
            float(rng.uniform(40, 120)),
            float(rng.uniform(60, 140)),
        ]
        kp = np.concatenate([np.asarray(box[:2]) + rel * box[2:], np.full((17, 1), 2.0)], axis=1)
        persons.append((kp, box))
    gt = _coco(persons)
    m = constant_baseline_metrics(gt, gt, COCO.sigmas, COCO.flip_pairs)
    assert m["AP"] == pytest.approx(1.0) and m["PCK@0.05"] == 1.0 and m["swap_rate"] <= 0.5
    # moving every val joint by 0.1 box units drops PCK@0.05 to 0 but keeps PCK@0.2
    shifted = [
        (np.concatenate([kp[:, :2] + 0.1 * np.asarray(box[2:]).max(), kp[:, 2:]], axis=1), box) for kp, box in persons
    ]
    m2 = constant_baseline_metrics(gt, _coco(shifted), COCO.sigmas)
    assert m2["PCK@0.05"] == 0.0 and m2["PCK@0.2"] == 1.0 and m2["AP"] < 0.5
