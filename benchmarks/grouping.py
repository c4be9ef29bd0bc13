"""Speed of the associative-embedding grouping decoder against a straightforward reference, same groupings.

reference (written here, as the original implementations do it: HigherHRNet ``lib/core/group.py`` /
pose-ae-train ``utils/group.py``): a per-joint Python loop keeping a dict of persons -> list of joints and a dict
of persons -> list of tags, the persons' mean tags recomputed with ``np.mean`` for every joint, the Hungarian
algorithm on the padded ``round(D) * 100 - score`` matrix, and a Python loop over the matched pairs. The solver is
``scipy.optimize.linear_sum_assignment`` in both (the originals use the pure-Python ``munkres`` package, which is
far slower still; the comparison here is solver-for-solver). Persons are keyed by an integer id (the originals key
them by the first tag value, which merges two persons whose tags are exactly equal).

ours: :func:`lightning_pose.codecs.associative_embedding.group_joints` (preallocated arrays, running tag sums,
vectorised acceptance and person creation).

Cases: (a) 17 joints x 30 candidates per joint with tags of 15 well-separated persons plus noise candidates;
(b) real-sized outputs: 17 x 128 x 128 heatmaps and tags -> NMS + top-30 + grouping, timed end to end (the
reference takes its NMS with ``F.max_pool2d`` as the originals; ours uses the codec's separable max filter);
(c) the whole decoding of those maps (``reference_decode``: the originals' Python loops for the quarter offset
and the person-by-person refinement) against ``AssociativeEmbeddingCodec.decode_persons``. Every case checks
that both give identical persons (positions, scores, membership).

    python3 benchmarks/grouping.py [--images 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import platform
import time
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from lightning_pose.codecs.associative_embedding import (
    COCO_GROUPING_ORDER,
    AssociativeEmbeddingCodec,
    group_joints,
    nms_topk,
)


def reference_group(
    cand_tags: np.ndarray,
    cand_scores: np.ndarray,
    cand_xy: np.ndarray,
    joint_order: Sequence[int],
    detection_threshold: float = 0.1,
    tag_threshold: float = 1.0,
    max_people: int = 30,
) -> np.ndarray:
    """Per-joint Python-loop grouping (module docstring); returns ``(P, K, 3)`` persons in creation order."""
    num_joints = cand_tags.shape[0]
    joint_dict: dict[int, np.ndarray] = {}
    tag_dict: dict[int, list[np.ndarray]] = {}
    next_id = 0
    for idx in joint_order:
        keep = cand_scores[idx] > detection_threshold
        tags = cand_tags[idx][keep]
        joints = np.concatenate([cand_xy[idx][keep], cand_scores[idx][keep][:, None]], axis=1)
        if joints.shape[0] == 0:
            continue
        if len(joint_dict) == 0:
            for tag, joint in zip(tags, joints):
                joint_dict[next_id] = np.zeros((num_joints, 3))
                joint_dict[next_id][idx] = joint
                tag_dict[next_id] = [tag]
                next_id += 1
            continue
        grouped_keys = list(joint_dict.keys())[:max_people]
        grouped_tags = [np.mean(tag_dict[i], axis=0) for i in grouped_keys]
        diff = tags[:, None, :] - np.array(grouped_tags)[None, :, :]
        diff_normed = np.linalg.norm(diff, ord=2, axis=2)
        diff_saved = np.copy(diff_normed)
        diff_normed = np.round(diff_normed) * 100 - joints[:, 2:3]
        num_added, num_grouped = diff.shape[0], diff.shape[1]
        if num_added > num_grouped:
            diff_normed = np.concatenate([diff_normed, np.zeros((num_added, num_added - num_grouped)) + 1e10], axis=1)
        rows, cols = linear_sum_assignment(diff_normed)
        for row, col in zip(rows, cols):
            if row < num_added and col < num_grouped and diff_saved[row][col] < tag_threshold:
                key = grouped_keys[col]
                joint_dict[key][idx] = joints[row]
                tag_dict[key].append(tags[row])
            else:
                joint_dict[next_id] = np.zeros((num_joints, 3))
                joint_dict[next_id][idx] = joints[row]
                tag_dict[next_id] = [tags[row]]
                next_id += 1
    if not joint_dict:
        return np.zeros((0, num_joints, 3))
    return np.array([joint_dict[i] for i in joint_dict], dtype=np.float64)


def reference_decode(hm: torch.Tensor, tg: torch.Tensor, order: Sequence[int], stride: float) -> np.ndarray:
    """The originals' whole decoding of one image (HigherHRNet ``HeatmapParser.parse``): NMS by ``F.max_pool2d``,
    top-30, the per-joint grouping above, a Python loop over persons and joints for the quarter offset, person
    scores, then refinement person by person (tag distance maps of all joints at once, then a Python loop over the
    joints); ``(P, K, 3)`` persons in the input frame, by decreasing score."""
    k = hm.shape[1]
    pooled = F.max_pool2d(hm, 5, 1, 2)
    kept = torch.where(pooled == hm, hm, torch.zeros_like(hm))
    s, index = kept.reshape(1, k, -1).topk(30, dim=-1)
    w = hm.shape[-1]
    cand = torch.gather(tg.reshape(1, k, 1, -1), 3, index[:, :, None, :]).permute(0, 1, 3, 2)[0].double().numpy()
    xy = torch.stack([index % w, index // w], -1)[0].double().numpy()
    persons = reference_group(cand, s[0].double().numpy(), xy, order)
    maps = hm[0].numpy().astype(np.float64)
    tags = tg[0, :, 0].numpy().astype(np.float64)  # (K, H, W), L = 1
    height, width = maps.shape[1:]
    mean_tags = []
    for person in persons:  # mean tag of the grouped joints, read at their integer pixels
        found = [tags[j, int(person[j, 1]), int(person[j, 0])] for j in range(k) if person[j, 2] > 0]
        mean_tags.append(np.mean(found))
    for person in persons:  # quarter offset
        for j in range(k):
            if person[j, 2] > 0:
                x, y = int(person[j, 0]), int(person[j, 1])
                if 0 < x < width - 1:
                    person[j, 0] += 0.25 * np.sign(maps[j, y, x + 1] - maps[j, y, x - 1])
                if 0 < y < height - 1:
                    person[j, 1] += 0.25 * np.sign(maps[j, y + 1, x] - maps[j, y - 1, x])
    scores = persons[:, :, 2].mean(axis=1) if len(persons) else np.zeros(0)
    sort = np.argsort(-scores, kind="stable")[:30]
    persons, mean_tags = persons[sort], [mean_tags[i] for i in sort]
    for person, tag in zip(persons, mean_tags):  # refinement
        score_maps = maps - np.round(np.sqrt((tags - tag) ** 2))
        for j in range(k):
            if person[j, 2] > 0:
                continue
            y, x = np.unravel_index(np.argmax(score_maps[j]), score_maps[j].shape)
            val = maps[j, y, x]
            if val > 0:
                qx, qy = float(x), float(y)
                if 0 < x < width - 1:
                    qx += 0.25 * np.sign(maps[j, y, x + 1] - maps[j, y, x - 1])
                if 0 < y < height - 1:
                    qy += 0.25 * np.sign(maps[j, y + 1, x] - maps[j, y - 1, x])
                person[j] = (qx, qy, val)
    persons[..., :2] *= stride
    persons[persons[..., 2] <= 0] = 0.0
    return persons


def synthetic_candidates(
    rng: np.random.Generator, num_joints: int = 17, num_cand: int = 30, persons: int = 15
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidates as the decoder sees them: per joint the true persons' detections (tags near the person's tag,
    scores 0.3-1) and clutter (random tags, scores 0-0.11, a few above the 0.1 threshold), sorted by decreasing
    score."""
    person_tags = rng.permutation(persons) * 2.5 + rng.normal(0, 0.1, persons)
    tags = rng.normal(0, 6.0, (num_joints, num_cand, 1))
    scores = rng.uniform(0.0, 0.11, (num_joints, num_cand))
    for j in range(num_joints):
        present = rng.random(persons) < 0.85
        n = int(present.sum())
        tags[j, :n, 0] = person_tags[present] + rng.normal(0, 0.15, n)
        scores[j, :n] = rng.uniform(0.3, 1.0, n)
    order = np.argsort(-scores, axis=1, kind="stable")
    scores = np.take_along_axis(scores, order, 1)
    tags = np.take_along_axis(tags, order[..., None], 1)
    xy = rng.uniform(0, 127, (num_joints, num_cand, 2))
    return tags, scores, xy


def synthetic_maps(
    rng: np.random.Generator, size: int = 128, persons: int = 12, num_joints: int = 17
) -> tuple[torch.Tensor, torch.Tensor]:
    """17 x size x size heatmaps (Gaussian peaks of ``persons`` people + low noise) and their tag maps."""
    yy, xx = np.mgrid[0:size, 0:size]
    hm = rng.uniform(0, 0.05, (num_joints, size, size))
    tg = rng.normal(0, 0.3, (num_joints, 1, size, size))
    for p in range(persons):
        cx, cy = rng.uniform(10, size - 10, 2)
        for j in range(num_joints):
            if rng.random() < 0.1:
                continue
            x, y = cx + rng.normal(0, 8), cy + rng.normal(0, 8)
            g = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 8.0) * rng.uniform(0.4, 1.0)
            hm[j] = np.maximum(hm[j], g)
            tg[j, 0] = np.where(g > 0.05, p * 2.0 + rng.normal(0, 0.1), tg[j, 0])
    return torch.from_numpy(hm[None]).float(), torch.from_numpy(tg[None]).float()


def _best_time(fn, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200, help="images per round (17 x 30 case)")
    parser.add_argument("--map-images", type=int, default=20, help="images per round (128 x 128 case)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    order = list(COCO_GROUPING_ORDER)
    rng = np.random.default_rng(0)

    cases = [synthetic_candidates(rng) for _ in range(args.images)]
    for tags, scores, xy in cases:  # same groupings
        ours, _ = group_joints(tags, scores, xy, order)
        ref = reference_group(tags, scores, xy, order)
        assert ours.shape == ref.shape and np.array_equal(ours, ref), "groupings differ"
    t_ref = _best_time(lambda: [reference_group(*c, order) for c in cases], args.rounds)
    t_ours = _best_time(lambda: [group_joints(*c, order) for c in cases], args.rounds)
    persons = np.mean([group_joints(*c, order)[0].shape[0] for c in cases])

    maps = [synthetic_maps(rng) for _ in range(args.map_images)]

    def reference_candidates(hm: torch.Tensor, tg: torch.Tensor):
        """NMS with ``F.max_pool2d`` and top-30, as the originals."""
        pooled = F.max_pool2d(hm, 5, 1, 2)
        kept = torch.where(pooled == hm, hm, torch.zeros_like(hm))
        s, index = kept.reshape(1, 17, -1).topk(30, dim=-1)
        w = hm.shape[-1]
        cand = torch.gather(tg.reshape(1, 17, 1, -1), 3, index[:, :, None, :]).permute(0, 1, 3, 2)
        xy = torch.stack([index % w, index // w], -1)[0].double().numpy()
        return cand[0].double().numpy(), s[0].double().numpy(), xy

    def candidates(hm: torch.Tensor, tg: torch.Tensor):
        s, px, py, cand = nms_topk(hm, tg, 30, 5)
        xy = torch.stack([px, py], -1)[0].double().numpy()
        return cand[0].double().numpy(), s[0].double().numpy(), xy

    for hm, tg in maps:
        c, rc = candidates(hm, tg), reference_candidates(hm, tg)
        assert all(np.array_equal(x, y) for x, y in zip(c, rc)), "NMS / top-k candidates differ"
        assert np.array_equal(group_joints(*c, order)[0], reference_group(*rc, order)), "groupings differ (maps)"
    t_ref_maps = _best_time(lambda: [reference_group(*reference_candidates(h, t), order) for h, t in maps], args.rounds)
    t_ours_maps = _best_time(lambda: [group_joints(*candidates(h, t), order) for h, t in maps], args.rounds)
    t_nms = _best_time(lambda: [candidates(h, t) for h, t in maps], args.rounds)
    t_nms_ref = _best_time(lambda: [reference_candidates(h, t) for h, t in maps], args.rounds)

    codec = AssociativeEmbeddingCodec((512, 512), (128, 128), 17, top_k=30, refine=True)
    for hm, tg in maps:
        ours_p = codec.decode_persons(hm, tg)[0].keypoints
        assert np.array_equal(ours_p, reference_decode(hm, tg, order, 4.0)), "decoded persons differ (full decode)"
    t_ref_full = _best_time(lambda: [reference_decode(h, t, order, 4.0) for h, t in maps], args.rounds)
    t_ours_full = _best_time(lambda: [codec.decode_persons(h, t) for h, t in maps], args.rounds)

    print(
        f"python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}; CPU time, "
        f"1 thread, best of {args.rounds} rounds"
    )
    print("| case | reference ms/image | ours ms/image | speed-up | same groupings |")
    print("|---|---|---|---|---|")
    print(
        f"| grouping, 17 joints x 30 candidates ({persons:.1f} persons found on average) | "
        f"{1e3 * t_ref / len(cases):.3f} | {1e3 * t_ours / len(cases):.3f} | {t_ref / t_ours:.1f}x | yes |"
    )
    g_ref = t_ref_maps - t_nms_ref
    g_ours = t_ours_maps - t_nms
    print(
        f"| 128x128 maps: NMS + top-30 + grouping | {1e3 * t_ref_maps / len(maps):.3f} | "
        f"{1e3 * t_ours_maps / len(maps):.3f} | {t_ref_maps / t_ours_maps:.1f}x | yes |"
    )
    print(
        f"| 128x128 maps: NMS + top-30 only (max_pool2d vs separable max filter) | "
        f"{1e3 * t_nms_ref / len(maps):.3f} | {1e3 * t_nms / len(maps):.3f} | {t_nms_ref / t_nms:.1f}x | - |"
    )
    print(
        f"| 128x128 maps: whole decoding (NMS, top-30, grouping, quarter offset, refinement) | "
        f"{1e3 * t_ref_full / len(maps):.3f} | {1e3 * t_ours_full / len(maps):.3f} | "
        f"{t_ref_full / t_ours_full:.1f}x | yes |"
    )
    print(
        "| 128x128 maps: grouping part only (total - NMS/top-k) | "
        f"{1e3 * g_ref / len(maps):.3f} | {1e3 * g_ours / len(maps):.3f} | {g_ref / max(g_ours, 1e-9):.1f}x | yes |"
    )


if __name__ == "__main__":
    main()
