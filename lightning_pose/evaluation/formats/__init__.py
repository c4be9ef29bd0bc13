"""Evaluation file formats: validated loaders and writers, one module per format. numpy / scipy / h5py / json only
(no torch).

* :mod:`~lightning_pose.evaluation.formats.common`: json reading, value checks, the keypoint count of a COCO GT;
* :mod:`~lightning_pose.evaluation.formats.coco`: COCO keypoint GT / results (0-based image pixels);
* :mod:`~lightning_pose.evaluation.formats.mpii`: MPII GT and predictions (MATLAB **1-based** pixels, kept so);
* :mod:`~lightning_pose.evaluation.formats.aic`: AI Challenger release files and every AIC conversion.

Every loader raises :class:`~lightning_pose.errors.DatasetError` naming the file, the record and the problem
(shape mismatch, wrong keypoint count, unknown image id, NaN in GT, strings or booleans where numbers belong, ...),
without the training-data hints (these are evaluation inputs). Writers are atomic (temporary file + rename,
:mod:`lightning_pose.outputs`): an interrupted write leaves the previous file intact. All public names are
importable from this package, as before the split.
"""

from lightning_pose.evaluation.formats.aic import (
    AIC_NUM_KEYPOINTS,
    COCO_VISIBILITY_TO_AIC,
    aic_release_preds,
    aic_release_preds_to_coco,
    aic_release_to_coco,
    coco_image_names,
    coco_results_to_aic_release,
    coco_style_aic_to_release,
    human_order,
    load_aic_release,
    split_known_images,
    write_aic_preds,
)
from lightning_pose.evaluation.formats.coco import load_coco_gt, load_coco_results, write_coco_results
from lightning_pose.evaluation.formats.common import category_num_keypoints, id_problem, load_json, number_problem
from lightning_pose.evaluation.formats.mpii import (
    MPII_NUM_JOINTS,
    MPII_PRED_LAYOUTS,
    MPIIEvalGT,
    load_mpii_gt,
    load_mpii_preds,
    write_mpii_preds,
)

__all__ = [
    "MPIIEvalGT",
    "load_json",
    "load_coco_gt",
    "load_coco_results",
    "load_mpii_gt",
    "load_mpii_preds",
    "load_aic_release",
    "write_coco_results",
    "write_mpii_preds",
    "write_aic_preds",
    "aic_release_preds",
    "aic_release_to_coco",
    "coco_style_aic_to_release",
    "coco_image_names",
    "coco_results_to_aic_release",
    "aic_release_preds_to_coco",
    "split_known_images",
    "number_problem",
    "id_problem",
    "category_num_keypoints",
    "human_order",
    "MPII_PRED_LAYOUTS",
    "MPII_NUM_JOINTS",
    "AIC_NUM_KEYPOINTS",
    "COCO_VISIBILITY_TO_AIC",
]
