"""Helpers of the associative-embedding codec tests: ideal network outputs built from the targets."""

from __future__ import annotations

import torch

BACKGROUND_TAG = -50.0
TAG_SPACING = 3.0


def ideal_tags(
    tag_index: torch.Tensor, tag_valid: torch.Tensor, num_keypoints: int, heatmap_size: tuple[int, int], radius: int = 3
) -> torch.Tensor:
    """Ideal 1-D tag maps ``(B, K, 1, H, W)``: person ``n``'s tag ``3 n`` in a ``(2 radius + 1)^2`` window around each
    of its joints (what a trained network predicts), a far background tag elsewhere."""
    w, h = heatmap_size
    b, n, k = tag_index.shape
    tags = torch.full((b, num_keypoints, 1, h, w), BACKGROUND_TAG, dtype=torch.float64)
    for bi in range(b):
        for p in range(n):
            for j in range(k):
                if not bool(tag_valid[bi, p, j]):
                    continue
                y, x = divmod(int(tag_index[bi, p, j]), w)
                tags[bi, j, 0, max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1] = (
                    TAG_SPACING * p
                )
    return tags
