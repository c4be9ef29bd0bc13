"""Associative Embedding codec (Newell, Huang & Deng, NeurIPS 2017): bottom-up targets, grouping and flip test.

This module owns every bottom-up coordinate convention; it follows the package's **convention A** (see
:mod:`lightning_pose.codecs`): heatmap pixel ``(i, j)`` sits at input pixel ``(i * s_x, j * s_y)`` with
``s = input_size / heatmap_size`` per axis.

Targets (:meth:`AssociativeEmbeddingCodec.encode`)
    * heatmaps ``(B, K, H_h, W_h)``: one Gaussian (peak 1, sigma in heatmap px, window radius ``3 sigma``) per
      labelled joint of every person, max-merged over persons. ``unbiased=True`` (default) centres it at the exact
      heatmap position ``x_in / s``; ``unbiased=False`` at the nearest heatmap pixel.
    * tag targets: for person ``n`` and joint ``k`` the flat index ``y * W_h + x`` of the **nearest heatmap pixel**
      ``(round(x_in / s_x), round(y_in / s_y))`` (the pixel where the Gaussian peaks, so the tag is read where the
      detection is found), valid when the joint is labelled (``v > 0``) and that pixel is inside the map.
    * mask ``(B, H_h, W_h)``: the bottom-up dataset's input-frame mask (0 on crowds / persons without keypoints)
      sampled at each heatmap pixel's input position.

Decoding (:meth:`AssociativeEmbeddingCodec.decode`), per image (HigherHRNet / pose-ae-train semantics):
    1. heatmap NMS: keep pixels equal to the ``nms_kernel`` max-pool of their map; top-``top_k`` per joint;
    2. quarter offset of every candidate towards its higher neighbour (heatmap frame);
    3. grouping joint by joint in ``joint_order``: candidates scoring > ``detection_threshold``; the first joint
       seeds the persons; each later joint is matched to the persons by the Hungarian algorithm
       (``scipy.optimize.linear_sum_assignment``) on ``round(D) * 100 - score`` (``D`` = L2 distance between the
       candidate's tag and the person's mean tag); a match is kept when ``D < tag_threshold``, otherwise the
       candidate starts a new person;
    4. person score = mean over the K joints of the joint scores (0 when missing), before refinement;
    5. refinement (optional): every missing joint of a person is taken at the argmax of
       ``h_k - round(||tag_k(x, y) - person tag||)`` (person tag = mean tag of its joints), quarter-offset, filled
       when the heatmap value there is > 0;
    6. coordinates back to the input frame ``x_in = x_h * s_x``; the task maps them to the original image with the
       bottom-up transform's exact inverse (``input_to_image``).

Flip test (:meth:`AssociativeEmbeddingCodec.merge_flip`): the flipped image's heatmaps and tags are flipped back
(W reversed, joint channels permuted with ``flip_indices``, shifted right by ``1 - 1/s`` heatmap px, the exact
convention-A alignment); heatmaps are averaged, tags **concatenated** (each candidate then carries a ``2L``-dim
tag). Multi-scale: :func:`merge_scales` averages heatmaps resampled exactly to the scale-1 grid
(:func:`resample_maps`); tags come from scale 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from lightning_pose.codecs.base import as_size, check_flip_indices, work_dtype
from lightning_pose.codecs.flip import flip_heatmaps, heatmap_flip_shift, shift_maps_x
from lightning_pose.codecs.heatmap import gaussian_heatmaps

__all__ = [
    "AETargets",
    "AEPersons",
    "AssociativeEmbeddingCodec",
    "SUBPIXEL_KINDS",
    "COCO_GROUPING_ORDER",
    "default_joint_order",
    "group_joints",
    "max_filter",
    "merge_scales",
    "nms_topk",
    "resample_maps",
    "split_tags",
]

#: head, shoulders, hips, then the limbs outwards (HigherHRNet / pose-ae-train order for COCO's 17 joints)
COCO_GROUPING_ORDER: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16)

_PAD_COST = 1e10  # cost of the padding columns when a joint has more candidates than there are persons


def default_joint_order(num_keypoints: int) -> list[int]:
    """The COCO grouping order for 17 joints, else ``0 .. K-1``."""
    return list(COCO_GROUPING_ORDER) if num_keypoints == 17 else list(range(num_keypoints))


@dataclass
class AETargets:
    """Training targets of one batch (heatmap frame).

    Attributes:
        heatmaps: ``(B, K, H_h, W_h)`` max-merged Gaussians.
        mask: ``(B, H_h, W_h)`` float, 1 = learn, 0 = ignore.
        tag_index: ``(B, N, K)`` long flat pixel index ``y * W_h + x`` of person ``n``'s joint ``k``.
        tag_valid: ``(B, N, K)`` bool, true where ``tag_index`` is used.
    """

    heatmaps: Tensor
    mask: Tensor
    tag_index: Tensor
    tag_valid: Tensor


@dataclass
class AEPersons:
    """Decoded persons of one image.

    Attributes:
        keypoints: ``(P, K, 3)`` float64 ``x, y, score`` in the **input frame** (0-based pixels); missing joints
            have ``x = y = score = 0``.
        scores: ``(P,)`` float64 person scores (mean joint score), sorted decreasingly.
        tags: ``(P, L)`` float64 mean tag of each person.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    tags: np.ndarray


def split_tags(tags: Tensor, num_keypoints: int) -> Tensor:
    """Network tag maps ``(B, K * L, H, W)`` (joint-major: channels ``k * L .. k * L + L - 1`` belong to joint
    ``k``) -> ``(B, K, L, H, W)``; a ``(B, K, L, H, W)`` input is returned as is."""
    if tags.dim() == 5:
        return tags
    b, c, h, w = tags.shape
    if c % num_keypoints:
        raise ValueError(f"tag maps have {c} channels, not a multiple of K = {num_keypoints}")
    return tags.reshape(b, num_keypoints, c // num_keypoints, h, w)


def _running_max(padded: Tensor, kernel: int, length: int, dim: int) -> Tensor:
    """``out[i] = max(padded[i : i + kernel])`` along ``dim`` for ``i < length`` by doubling windows: widths 1, 2,
    4, ... then one overlapping step to ``kernel`` (``ceil(log2 kernel)`` maxima instead of ``kernel - 1``)."""
    cur, width = padded, 1
    while 2 * width <= kernel:
        n = cur.shape[dim] - width
        cur = torch.maximum(cur.narrow(dim, 0, n), cur.narrow(dim, width, n))
        width *= 2
    if width < kernel:  # windows [i, i + width) and [i + kernel - width, i + kernel) cover [i, i + kernel)
        cur = torch.maximum(cur.narrow(dim, 0, length), cur.narrow(dim, kernel - width, length))
    return cur.narrow(dim, 0, length)


def max_filter(maps: Tensor, kernel: int) -> Tensor:
    """``kernel x kernel`` maximum filter of ``(..., H, W)`` maps (stride 1, same size, borders ignored); equal to
    ``F.max_pool2d(maps, kernel, 1, kernel // 2)``, computed separably with shifted views and doubling windows
    (~10x faster than ``max_pool2d`` on CPU for ``kernel = 5``)."""
    r = kernel // 2
    if r == 0:
        return maps
    h, w = maps.shape[-2:]
    padded = maps.new_full((*maps.shape[:-2], h + 2 * r, w + 2 * r), float("-inf"))
    padded[..., r : r + h, r : r + w] = maps
    rows = _running_max(padded, kernel, w, padded.dim() - 1)  # (..., H + 2r, W)
    return _running_max(rows, kernel, h, rows.dim() - 2)


def nms_topk(heatmaps: Tensor, tags: Tensor, top_k: int, nms_kernel: int = 5) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Heatmap NMS by max-pooling and the ``top_k`` candidates per joint.

    Args:
        heatmaps: ``(B, K, H, W)``.
        tags: ``(B, K, L, H, W)``.
        top_k: candidates per joint (``min(top_k, H * W)`` are returned).
        nms_kernel: odd max-pool window in heatmap px.

    Returns:
        ``scores (B, K, M)`` (decreasing), ``px, py (B, K, M)`` long heatmap pixels, ``cand_tags (B, K, M, L)``.
    """
    b, k, h, w = heatmaps.shape
    if nms_kernel % 2 != 1 or nms_kernel < 1:
        raise ValueError(f"nms_kernel must be an odd positive integer, got {nms_kernel}")
    kept = max_filter(heatmaps, nms_kernel).contiguous()
    kept.masked_fill_(kept != heatmaps, 0.0)  # = heatmaps at the local maxima, 0 elsewhere
    m = min(int(top_k), h * w)
    scores, index = kept.reshape(b, k, h * w).topk(m, dim=-1)
    length = tags.shape[2]
    flat_tags = tags.reshape(b, k, length, h * w)
    cand = torch.gather(flat_tags, 3, index[:, :, None, :].expand(b, k, length, m)).permute(0, 1, 3, 2)
    return scores, index % w, torch.div(index, w, rounding_mode="floor"), cand


def _quarter(
    maps: np.ndarray, px: np.ndarray, py: np.ndarray, channel: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Quarter offset towards the higher neighbour (heatmap frame): ``maps`` ``(H, W)``, or ``(C, H, W)`` with the
    ``channel`` of every point; ``px, py`` integer pixels. Returns float ``x, y``."""
    h, w = maps.shape[-2:]

    def at(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        return maps[channel, yy, xx] if channel is not None else maps[yy, xx]

    has_x = (px > 0) & (px < w - 1)
    has_y = (py > 0) & (py < h - 1)
    # px, py are inside the map: clamping the neighbours needs one bound each (np.clip costs more here)
    dx = at(py, np.minimum(px + 1, w - 1)) - at(py, np.maximum(px - 1, 0))
    dy = at(np.minimum(py + 1, h - 1), px) - at(np.maximum(py - 1, 0), px)
    x = px.astype(np.float64) + 0.25 * np.where(has_x, np.sign(dx), 0.0)
    y = py.astype(np.float64) + 0.25 * np.where(has_y, np.sign(dy), 0.0)
    return x, y


#: sub-pixel refinements of the decoded peaks (``AssociativeEmbeddingCodec(subpixel=...)``)
SUBPIXEL_KINDS = ("quarter", "log_parabola")


def _log_parabola(
    maps: np.ndarray, px: np.ndarray, py: np.ndarray, channel: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Peak of the parabola through the logs of the pixel and its two neighbours, per axis (heatmap frame).

    Exact for a sampled Gaussian (any sigma): ``ln h`` is then a parabola per axis. ``maps``, ``channel``, ``px``,
    ``py`` as :func:`_quarter`; the offset is clipped to ``[-0.5, 0.5]`` px. Where a value is ``<= 0``, the log
    curve is not concave, or the pixel is on the border, that axis falls back to the quarter offset.
    """
    h, w = maps.shape[-2:]
    qx, qy = _quarter(maps, px, py, channel)

    def at(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        v = maps[channel, yy, xx] if channel is not None else maps[yy, xx]
        return np.asarray(v, dtype=np.float64)

    centre = at(py, px)
    out = []
    for coord, quarter, prev, nxt, inside in (
        (px, qx, at(py, np.maximum(px - 1, 0)), at(py, np.minimum(px + 1, w - 1)), (px > 0) & (px < w - 1)),
        (py, qy, at(np.maximum(py - 1, 0), px), at(np.minimum(py + 1, h - 1), px), (py > 0) & (py < h - 1)),
    ):
        positive = inside & (prev > 0) & (nxt > 0) & (centre > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            lp, lc, ln = (np.log(np.where(positive, v, 1.0)) for v in (prev, centre, nxt))
            curv = lp - 2.0 * lc + ln
            ok = positive & (curv < 0)
            offset = np.clip(0.5 * (lp - ln) / np.where(ok, curv, -1.0), -0.5, 0.5)
        out.append(np.where(ok, coord.astype(np.float64) + offset, quarter))
    return out[0], out[1]


def group_joints(
    cand_tags: np.ndarray,
    cand_scores: np.ndarray,
    cand_xy: np.ndarray,
    joint_order: Sequence[int],
    *,
    detection_threshold: float = 0.1,
    tag_threshold: float = 1.0,
    use_detection_val: bool = True,
    max_people: int = 30,
) -> tuple[np.ndarray, np.ndarray]:
    """Group the candidates of one image into persons, joint by joint (step 3 of the module docstring).

    Args:
        cand_tags: ``(K, M, L)`` float64 tags of the candidates.
        cand_scores: ``(K, M)`` float64 heatmap scores.
        cand_xy: ``(K, M, 2)`` float64 positions (any frame; copied to the output).
        joint_order: the order in which joints are grouped.
        detection_threshold: candidates must score strictly above it.
        tag_threshold: largest L2 tag distance of an accepted match (strict).
        use_detection_val: cost ``round(D) * 100 - score`` (else ``D``).
        max_people: only the first ``max_people`` persons are matched against (later ones can only be seeded).

    Returns:
        ``joints (P, K, 3)`` ``x, y, score`` (zeros where missing) and ``tags (P, L)``, the mean tag of each
        person's joints; persons in creation order.
    """
    k_total, _, length = cand_tags.shape
    above = cand_scores > detection_threshold
    counts = above.sum(axis=1)
    capacity = int(counts.sum())
    # candidates from top-k come sorted by decreasing score: the kept ones are then a prefix (views, no copies)
    prefix = bool(np.all(above[:, 1:] <= above[:, :-1])) if above.shape[1] > 1 else True
    joints = np.zeros((capacity, k_total, 3), dtype=np.float64)
    tag_sum = np.zeros((capacity, length), dtype=np.float64)
    count = np.zeros(capacity, dtype=np.float64)
    n = 0
    for j in joint_order:
        m = int(counts[j])
        if m == 0:
            continue
        if prefix:
            tags, scores, xy = cand_tags[j, :m], cand_scores[j, :m], cand_xy[j, :m]
        else:
            sel = above[j]
            tags, scores, xy = cand_tags[j][sel], cand_scores[j][sel], cand_xy[j][sel]
        g = min(n, max_people)
        if g == 0:
            new_rows = np.arange(m)
        else:
            means = tag_sum[:g] / count[:g, None]
            if length == 1:
                dist = np.abs(tags - means[:, 0])  # (m, 1) - (g,) -> (m, g); equals the L2 norm for L = 1
            else:
                dist = np.sqrt(((tags[:, None, :] - means[None, :, :]) ** 2).sum(-1))
            if use_detection_val:
                cost = np.empty((m, max(m, g)))
                np.multiply(np.round(dist), 100.0, out=cost[:, :g])
                cost[:, :g] -= scores[:, None]
            else:
                cost = np.empty((m, max(m, g)))
                cost[:, :g] = dist
            cost[:, g:] = _PAD_COST
            rows, cols = linear_sum_assignment(cost)
            ok = (cols < g) & (dist[rows, np.minimum(cols, g - 1)] < tag_threshold)
            r_ok, c_ok = rows[ok], cols[ok]
            joints[c_ok, j, :2] = xy[r_ok]
            joints[c_ok, j, 2] = scores[r_ok]
            tag_sum[c_ok] += tags[r_ok]
            count[c_ok] += 1
            new_rows = rows[~ok]
        if new_rows.size:
            e = n + new_rows.size
            joints[n:e, j, :2] = xy[new_rows]
            joints[n:e, j, 2] = scores[new_rows]
            tag_sum[n:e] = tags[new_rows]
            count[n:e] = 1
            n = e
    tags_mean = tag_sum[:n] / np.maximum(count[:n], 1.0)[:, None]
    return joints[:n], tags_mean


class AssociativeEmbeddingCodec:  # a lightning_pose.codecs.base.Codec (bottom-up shapes)
    """Bottom-up targets, grouping decoder and flip merge (module docstring).

    Args:
        input_size: network input ``(W_in, H_in)`` in pixels.
        heatmap_size: heatmap ``(W_h, H_h)`` of the tagged output (stride 4 for the hourglass).
        num_keypoints: K.
        sigma: Gaussian sigma in heatmap px (2 at 128x128 in the paper: out_res / 64).
        unbiased: sub-pixel Gaussian centres (needed for quarter-pixel accuracy); ``False`` = nearest pixel.
        max_people: most persons kept per image (highest scores first).
        top_k: candidates per joint.
        nms_kernel: max-pool NMS window (heatmap px).
        detection_threshold, tag_threshold, use_detection_val: grouping settings (:func:`group_joints`).
        refine: fill missing joints from the person's mean tag.
        subpixel: sub-pixel position of a peak: ``"quarter"`` (the paper's quarter offset towards the higher
            neighbour) or ``"log_parabola"`` (per axis, the vertex of the parabola through the logs of the peak and
            its two neighbours: exact for a Gaussian, clipped to half a pixel; quarter offset where it does not
            apply).
        joint_order: grouping order (default :func:`default_joint_order`).
    """

    target_keys = ("heatmaps", "mask", "tag_index", "tag_valid")

    def __init__(
        self,
        input_size: Sequence[int],
        heatmap_size: Sequence[int],
        num_keypoints: int,
        *,
        sigma: float = 2.0,
        unbiased: bool = True,
        max_people: int = 30,
        top_k: int = 30,
        nms_kernel: int = 5,
        detection_threshold: float = 0.1,
        tag_threshold: float = 1.0,
        use_detection_val: bool = True,
        refine: bool = True,
        joint_order: Sequence[int] | None = None,
        subpixel: str = "quarter",
    ) -> None:
        self.input_size = as_size(input_size, "input_size")
        self.heatmap_size = as_size(heatmap_size, "heatmap_size")
        self.num_keypoints = int(num_keypoints)
        if sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        if max_people < 1 or top_k < 1:
            raise ValueError(f"max_people and top_k must be >= 1, got {max_people}, {top_k}")
        self.sigma = float(sigma)
        self.unbiased = bool(unbiased)
        self.max_people = int(max_people)
        self.top_k = int(top_k)
        self.nms_kernel = int(nms_kernel)
        self.detection_threshold = float(detection_threshold)
        self.tag_threshold = float(tag_threshold)
        self.use_detection_val = bool(use_detection_val)
        self.refine = bool(refine)
        if subpixel not in SUBPIXEL_KINDS:
            raise ValueError(f"subpixel must be one of {SUBPIXEL_KINDS}, got {subpixel!r}")
        self.subpixel = subpixel
        order = list(joint_order) if joint_order is not None else default_joint_order(self.num_keypoints)
        if sorted(order) != list(range(self.num_keypoints)):
            raise ValueError(f"joint_order must be a permutation of 0..{self.num_keypoints - 1}, got {order}")
        self.joint_order = order

    def __repr__(self) -> str:
        return (
            f"AssociativeEmbeddingCodec(input_size={self.input_size}, heatmap_size={self.heatmap_size}, "
            f"K={self.num_keypoints}, sigma={self.sigma}, unbiased={self.unbiased})"
        )

    def stride(self, heatmap_size: Sequence[int] | None = None) -> tuple[float, float]:
        """Input pixels per heatmap pixel ``(s_x, s_y)``."""
        w, h = self.heatmap_size if heatmap_size is None else heatmap_size
        return self.input_size[0] / w, self.input_size[1] / h

    # ------------------------------------------------------------------ targets
    def encode(
        self,
        keypoints: Tensor,
        num_persons: Tensor | None = None,
        mask: Tensor | None = None,
        heatmap_size: Sequence[int] | None = None,
    ) -> dict[str, Tensor]:
        """Targets of a batch: ``{"heatmaps", "mask", "tag_index", "tag_valid"}`` (the fields of
        :class:`AETargets`, heatmap frame).

        Args:
            keypoints: ``(B, N, K, 3)`` input-frame ``x, y, v`` (padding persons have ``v = 0``).
            num_persons: ``(B,)`` persons used per image (``None`` = all N).
            mask: ``(B, H_in, W_in)`` input-frame mask (non-zero = learn); ``None`` = all ones.
            heatmap_size: ``(W_h, H_h)`` to encode at (default: the codec's), e.g. the stride-2 output of the
                HigherHRNet-style network.
        """
        if keypoints.dim() != 4 or keypoints.shape[-2:] != (self.num_keypoints, 3):
            raise ValueError(f"encode: keypoints must be (B, N, {self.num_keypoints}, 3), got {tuple(keypoints.shape)}")
        w_h, h_h = self.heatmap_size if heatmap_size is None else as_size(heatmap_size, "heatmap_size")
        s_x, s_y = self.stride((w_h, h_h))
        b, n, k, _ = keypoints.shape
        dtype = work_dtype(keypoints.dtype)
        kp = keypoints.to(dtype)
        labelled = kp[..., 2] > 0
        if num_persons is not None:
            person = torch.arange(n, device=kp.device)[None, :] < num_persons.to(kp.device)[:, None]
            labelled = labelled & person[..., None]
        bad = labelled & ~torch.isfinite(kp[..., :2]).all(dim=-1)
        if bool(bad.any()):
            bi, ni, ki = (int(i) for i in bad.nonzero()[0])
            raise ValueError(
                f"encode: keypoint {ki} of person {ni} in sample {bi} is labelled but has non-finite "
                f"coordinates {kp[bi, ni, ki, :2].tolist()}"
            )
        kp = torch.where(labelled[..., None], kp, torch.zeros_like(kp))
        pos = torch.stack([kp[..., 0] / s_x, kp[..., 1] / s_y], dim=-1)  # (B, N, K, 2) heatmap frame
        nearest = torch.floor(pos + 0.5)
        centres = pos if self.unbiased else nearest
        heatmaps = torch.zeros(b, k, h_h, w_h, dtype=dtype, device=kp.device)
        active = labelled.any(dim=-1).any(dim=0)
        for i in torch.nonzero(active).flatten().tolist():
            maps, _ = gaussian_heatmaps(centres[:, i], labelled[:, i], (w_h, h_h), self.sigma)
            heatmaps = torch.maximum(heatmaps, maps)
        ix, iy = nearest[..., 0].long(), nearest[..., 1].long()
        inside = (ix >= 0) & (ix < w_h) & (iy >= 0) & (iy < h_h)
        valid = labelled & inside
        tag_index = torch.where(valid, iy * w_h + ix, torch.zeros_like(ix))
        if mask is None:
            mask_h = torch.ones(b, h_h, w_h, dtype=dtype, device=kp.device)
        else:
            mask_h = self.sample_mask(mask, (w_h, h_h)).to(dtype)
        return {"heatmaps": heatmaps, "mask": mask_h, "tag_index": tag_index, "tag_valid": valid}

    def sample_mask(self, mask: Tensor, heatmap_size: Sequence[int]) -> Tensor:
        """Input-frame mask ``(B, H_in, W_in)`` -> ``(B, H_h, W_h)`` {0, 1}: the value at the input pixel nearest
        to each heatmap pixel's input position ``(i * s_x, j * s_y)``."""
        w_h, h_h = heatmap_size
        s_x, s_y = self.stride((w_h, h_h))
        h_in, w_in = mask.shape[-2:]
        xs = torch.clamp(torch.floor(torch.arange(w_h, device=mask.device) * s_x + 0.5).long(), 0, w_in - 1)
        ys = torch.clamp(torch.floor(torch.arange(h_h, device=mask.device) * s_y + 0.5).long(), 0, h_in - 1)
        return (mask[:, ys][:, :, xs] > 0).float()

    # ------------------------------------------------------------------ flip / multi-scale
    def flip_back(
        self, heatmaps: Tensor, tags: Tensor, flip_indices: Sequence[int], input_width: int | None = None
    ) -> tuple[Tensor, Tensor]:
        """Outputs of the flipped input -> aligned with the unflipped input (channels permuted, exact shift).

        Args: ``heatmaps (B, K, H, W)``, ``tags (B, K, L, H, W)`` or ``(B, K * L, H, W)``; ``input_width`` of the
        flipped network input (default ``input_size[0]``; differs in multi-scale testing).
        Returns: ``heatmaps (B, K, H, W)``, ``tags (B, K, L, H, W)``.
        """
        k = self.num_keypoints
        idx = check_flip_indices(flip_indices, k, "AssociativeEmbeddingCodec.flip_back")
        shift = heatmap_flip_shift(int(input_width or self.input_size[0]), heatmaps.shape[-1])
        hm = flip_heatmaps(heatmaps, idx, shift, interpolation="cubic", border="replicate")
        t = split_tags(tags, k)
        perm = torch.as_tensor(idx, device=t.device, dtype=torch.long)
        t = t.to(work_dtype(t.dtype)).flip(-1).index_select(1, perm)
        t = shift_maps_x(t, shift, interpolation="linear", border="replicate")
        return hm, t

    def merge_flip(
        self,
        heatmaps: Tensor,
        tags: Tensor,
        flipped_heatmaps: Tensor,
        flipped_tags: Tensor,
        flip_indices: Sequence[int],
        input_width: int | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Flip test: heatmaps averaged, tags concatenated along L -> ``(B, K, H, W)``, ``(B, K, 2L, H, W)``."""
        hm_b, t_b = self.flip_back(flipped_heatmaps, flipped_tags, flip_indices, input_width)
        t = split_tags(tags, self.num_keypoints).to(t_b.dtype)
        return 0.5 * (heatmaps.to(hm_b.dtype) + hm_b), torch.cat([t, t_b], dim=2)

    # ------------------------------------------------------------------ decoding
    @torch.no_grad()
    def decode(self, heatmaps: Tensor, tags: Tensor) -> tuple[Tensor, Tensor]:
        """Persons of every image as padded tensors (the :class:`~lightning_pose.codecs.base.Codec` shape).

        Args: as :meth:`decode_persons`.

        Returns:
            ``coords`` ``(B, P, K, 2)`` float64 input-frame px and ``scores`` ``(B, P, K)`` float64 joint scores,
            ``P = max_people``; person ``p`` of image ``b`` is the ``p``-th by decreasing person score; rows of
            absent persons and missing joints are zeros.
        """
        persons = self.decode_persons(heatmaps, tags)
        k = self.num_keypoints
        out = np.zeros((len(persons), self.max_people, k, 3), dtype=np.float64)
        for b, p in enumerate(persons):
            out[b, : len(p.keypoints)] = p.keypoints[: self.max_people]
        t = torch.from_numpy(out).to(heatmaps.device)
        return t[..., :2], t[..., 2]

    @torch.no_grad()
    def decode_persons(self, heatmaps: Tensor, tags: Tensor) -> list[AEPersons]:
        """Persons of every image (module docstring, steps 1-6).

        Args:
            heatmaps: ``(B, K, H_h, W_h)``; the stride is ``input_size / (W_h, H_h)``.
            tags: ``(B, K, L, H_h, W_h)`` or ``(B, K * L, H_h, W_h)``.

        Returns:
            one :class:`AEPersons` per image, keypoints in the input frame.
        """
        k = self.num_keypoints
        if heatmaps.dim() != 4 or heatmaps.shape[1] != k:
            raise ValueError(f"decode: heatmaps must be (B, {k}, H, W), got {tuple(heatmaps.shape)}")
        tags5 = split_tags(tags, k)
        if tags5.shape[0] != heatmaps.shape[0] or tags5.shape[-2:] != heatmaps.shape[-2:]:
            raise ValueError(f"decode: tags {tuple(tags.shape)} do not match heatmaps {tuple(heatmaps.shape)}")
        hm = heatmaps.detach().to(torch.float32)
        tg = tags5.detach().to(torch.float32)
        scores, px, py, cand = nms_topk(hm, tg, self.top_k, self.nms_kernel)
        h_h, w_h = hm.shape[-2:]
        s_x, s_y = self.stride((w_h, h_h))
        # the maps stay float32: numpy promotes them exactly where they meet float64 values (refinement), and the
        # quarter offset only needs the sign of a float32 difference, which is exact
        hm_np = hm.cpu().numpy()
        scores_np = scores.cpu().numpy().astype(np.float64)
        px_np, py_np = px.cpu().numpy(), py.cpu().numpy()
        cand_np = cand.cpu().numpy().astype(np.float64)
        tg_np = tg.cpu().numpy() if self.refine else None
        out = []
        for b in range(hm.shape[0]):
            # quarter offset of every candidate (vectorised over joints x candidates)
            kk = np.repeat(np.arange(k), px_np.shape[-1])
            qx, qy = self._subpixel(hm_np[b], px_np[b].reshape(-1), py_np[b].reshape(-1), kk)
            xy = np.stack([qx, qy], axis=-1).reshape(k, -1, 2)
            joints, person_tags = group_joints(
                cand_np[b],
                scores_np[b],
                xy,
                self.joint_order,
                detection_threshold=self.detection_threshold,
                tag_threshold=self.tag_threshold,
                use_detection_val=self.use_detection_val,
                max_people=self.max_people,
            )
            person_scores = joints[:, :, 2].mean(axis=1) if len(joints) else np.zeros(0)
            order = np.argsort(-person_scores, kind="stable")[: self.max_people]
            joints, person_tags, person_scores = joints[order], person_tags[order], person_scores[order]
            if self.refine and len(joints):
                joints = self._refine(hm_np[b], tg_np[b], joints, person_tags)
            kp = joints.copy()
            kp[..., 0] *= s_x
            kp[..., 1] *= s_y
            kp[kp[..., 2] <= 0] = 0.0
            out.append(AEPersons(kp, person_scores, person_tags))
        return out

    def _subpixel(
        self, maps: np.ndarray, px: np.ndarray, py: np.ndarray, channel: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sub-pixel positions of the integer peaks ``(px, py)`` of ``maps[channel]`` (heatmap frame)."""
        if self.subpixel == "log_parabola":
            return _log_parabola(maps, px, py, channel)
        return _quarter(maps, px, py, channel)

    def _refine(
        self, heatmaps: np.ndarray, tags: np.ndarray, joints: np.ndarray, person_tags: np.ndarray
    ) -> np.ndarray:
        """Fill missing joints (score 0) at ``argmax(h_k - round(||tag_k - person tag||))`` when ``h_k > 0``.

        ``heatmaps (K, H, W)``, ``tags (K, L, H, W)``, ``joints (P, K, 3)`` heatmap frame, ``person_tags (P, L)``.
        """
        joints = joints.copy()
        w = heatmaps.shape[-1]
        one_dim = tags.shape[1] == 1
        found_p, found_j, found_flat = [], [], []
        for j in range(heatmaps.shape[0]):
            missing = np.nonzero(joints[:, j, 2] <= 0)[0]
            if missing.size == 0:
                continue
            if one_dim:  # |d| equals sqrt(d * d) exactly in binary floating point
                dist = np.abs(tags[j, 0][None] - person_tags[missing, 0][:, None, None])  # (P', H, W)
            else:
                diff = tags[j][None] - person_tags[missing][:, :, None, None]  # (P', L, H, W)
                dist = np.sqrt((diff * diff).sum(axis=1))
            score = np.subtract(heatmaps[j][None], np.round(dist, out=dist), out=dist)
            found_p.append(missing)
            found_j.append(np.full(missing.size, j))
            found_flat.append(score.reshape(missing.size, -1).argmax(axis=1))
        if not found_p:
            return joints
        p, j, flat = np.concatenate(found_p), np.concatenate(found_j), np.concatenate(found_flat)
        py, px = flat // w, flat % w
        val = heatmaps[j, py, px]
        fill = val > 0
        p, j, px, py, val = p[fill], j[fill], px[fill], py[fill], val[fill]
        qx, qy = self._subpixel(heatmaps, px, py, j)  # all filled joints at once
        joints[p, j, 0] = qx
        joints[p, j, 1] = qy
        joints[p, j, 2] = val
        return joints


def resample_maps(
    maps: Tensor,
    src_stride: Sequence[float],
    dst_stride: Sequence[float],
    dst_size: Sequence[int],
    image_scale: Sequence[float] = (1.0, 1.0),
) -> Tensor:
    """Resample convention-A maps onto another grid of the same input frame (bilinear, border values replicated).

    ``maps (..., h, w)`` were computed at stride ``src_stride`` on an input resized by ``image_scale = (r_x, r_y)``
    (``cv2``/``torch`` half-pixel resize: ``x' = (x + 0.5) r - 0.5``); the result is ``(..., H, W)`` on the grid of
    stride ``dst_stride`` of the unscaled input (``dst_size = (W, H)``). Source position of destination pixel ``i``:
    ``u = (i * s_dst + 0.5 - 0.5 / r) * r / s_src``, exact for the HigherHRNet stride-4 -> stride-2 upsampling
    (``r = 1``) and for multi-scale testing.
    """
    lead = maps.shape[:-2]
    h, w = maps.shape[-2:]
    w_d, h_d = int(dst_size[0]), int(dst_size[1])
    flat = maps.reshape(1, -1, h, w)
    axes = []
    for n_dst, n_src, s_d, s_s, r in (
        (w_d, w, dst_stride[0], src_stride[0], image_scale[0]),
        (h_d, h, dst_stride[1], src_stride[1], image_scale[1]),
    ):
        i = torch.arange(n_dst, device=maps.device, dtype=torch.float64)
        u = (i * s_d + 0.5 - 0.5 / r) * r / s_s
        # align_corners=True: normalised -1 / +1 are the centres of the first / last source pixel
        axes.append((2.0 * u / max(n_src - 1, 1) - 1.0).to(maps.dtype))
    gy, gx = torch.meshgrid(axes[1], axes[0], indexing="ij")
    grid = torch.stack([gx, gy], dim=-1)[None]
    out = F.grid_sample(flat, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out.reshape(*lead, h_d, w_d)


def merge_scales(heatmaps: Sequence[Tensor]) -> Tensor:
    """Multi-scale test: the average of heatmaps already resampled to one grid (:func:`resample_maps`)."""
    return torch.stack(list(heatmaps), dim=0).mean(dim=0)
