"""T11: every metric under torch.distributed (gloo, CPU) equals the single-process value.

World sizes 2 and 3 with DistributedSampler(drop_last=False) padding (dataset lengths 17, 13, 11 are not
multiples of 2 or 3), and a split where one rank never calls update (its cat states are empty). Every output
(compute() dicts, the exported COCO results and MPII prediction array) must equal the single-process one (1e-12)."""

from __future__ import annotations

import json
import math

import metrics_ddp_helpers as h
import numpy as np
import pytest
import torch.multiprocessing as mp


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


@pytest.mark.slow
def test_ddp_equals_single_process(tmp_path, reference):
    """One 3-process spawn: world 3 (padded sampler; one empty rank) and world 2 (sub-group of ranks 0, 1)."""
    mp.spawn(h.ddp_worker, args=(3, str(tmp_path / "init"), str(tmp_path)), nprocs=3, join=True)
    for tag, _world, _split in h.DDP_RUNS:
        got = json.loads((tmp_path / f"{tag}.json").read_text())
        _assert_same(got, reference, tag)
        assert got["coco"]["AP"] > 0.5 and 0 < got["aic"]["AIC_score"] < 1
        assert np.isfinite(got["pckh"]["PCKh@0.5"])


def test_padding_really_duplicates_samples():
    """Guard for the test design: the sampler pads (so de-duplication is exercised) at world sizes 2 and 3."""
    from torch.utils.data import DistributedSampler

    for n in (17, 13, 11):
        for w in (2, 3):
            seen = [i for r in range(w) for i in DistributedSampler(range(n), num_replicas=w, rank=r, shuffle=False)]
            assert len(seen) > n and set(seen) == set(range(n))
