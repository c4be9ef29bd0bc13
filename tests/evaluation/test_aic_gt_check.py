"""One check of an AI Challenger release GT person, shared by the file loader and the official scorer."""

from __future__ import annotations

import copy
import json

import pytest

from lightning_pose.data.readers.aic import AIC_VISIBILITY_TO_COCO
from lightning_pose.errors import DatasetError
from lightning_pose.evaluation.aic import aic_official_score
from lightning_pose.evaluation.formats import load_aic_release
from lightning_pose.evaluation.formats.aic import COCO_VISIBILITY_TO_AIC, release_person_problems

_KP = [10.0, 20.0, 1] * 14
_BOX = [0.0, 0.0, 50.0, 100.0]


def test_person_check():
    assert release_person_problems(_KP, _BOX) == []
    assert release_person_problems(_KP[:-3], _BOX) == [("39 keypoint values, expected 42 (14 x 3)", "keypoint_count")]
    [(problem, kind)] = release_person_problems(["1"] + _KP[1:], _BOX)
    assert problem.startswith("keypoints[0] is a string") and kind == "bad_value"
    assert release_person_problems(_KP, None)[0][0] == "human_annotations box must be 4 finite numbers, got None"
    zero_codes = [10.0, 20.0, 0] * 14
    assert release_person_problems(zero_codes, _BOX)[0] == ("visibility codes [0.0], expected 1/2/3", "bad_value")
    assert release_person_problems(zero_codes, _BOX, check_codes=False) == []
    assert release_person_problems(_KP, None, gt=False) == []  # predictions have no box
    # one visibility table and its inverse
    assert (
        {AIC_VISIBILITY_TO_COCO[a]: a for a in AIC_VISIBILITY_TO_COCO} == COCO_VISIBILITY_TO_AIC == {2: 1, 1: 2, 0: 3}
    )


def test_loader_and_scorer_refuse_the_same_person(tmp_path):
    gt = [{"image_id": "abc", "human_annotations": {"human1": _BOX}, "keypoint_annotations": {"human1": _KP}}]
    preds = [{"image_id": "abc", "keypoint_annotations": {"human1": _KP}}]
    assert aic_official_score(gt, preds) == pytest.approx(1.0)
    bad = copy.deepcopy(gt)
    bad[0]["keypoint_annotations"]["human1"][0] = "10"
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(DatasetError, match=r"gt\.json: human1 \(image abc\): keypoints\[0\] is a string"):
        load_aic_release(path, kind="gt")
    with pytest.raises(DatasetError, match=r"mine: image abc, human1: keypoints\[0\] is a string"):
        aic_official_score(bad, preds, gt_name="mine")
