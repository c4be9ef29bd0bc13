"""T11: every metric under torch.distributed (gloo, CPU) equals the single-process value.

World sizes 2 and 3 with DistributedSampler(drop_last=False) padding (dataset lengths 17, 13, 11 are not
multiples of 2 or 3), and a split where one rank never calls update (its cat states are empty)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch.multiprocessing as mp

import metrics_ddp_helpers as h


def _assert_same(a, b, path=""):
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            _assert_same(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b), path
    else:
        assert a == pytest.approx(b, abs=1e-12, rel=0), path


@pytest.fixture(scope="module")
def reference():
    # round-trip through json like the workers' output, so both sides have the same types
    return json.loads(json.dumps(h.single_process_results()))


def _spawn(tmp_path, world, splits):
    mp.spawn(h.ddp_worker, args=(world, str(tmp_path / "init"), str(tmp_path), splits), nprocs=world, join=True)
    return {split: json.loads((tmp_path / f"result_{split}.json").read_text()) for split in splits}


@pytest.mark.slow
@pytest.mark.parametrize("world,splits", [(2, ("sampler",)), (3, ("sampler", "empty_rank"))])
def test_ddp_equals_single_process(tmp_path, reference, world, splits):
    for split, got in _spawn(tmp_path, world, splits).items():
        _assert_same(got, reference, split)
        assert got["coco"]["AP"] > 0.5 and 0 < got["aic"]["AIC_score"] < 1
        assert np.isfinite(got["pckh"]["PCKh@0.5"])
