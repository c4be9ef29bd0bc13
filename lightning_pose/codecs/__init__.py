"""Codecs: input-frame keypoints <-> training targets, decoding and flip-back (torch only, no Lightning).

This package is the only place where heatmap / regression coordinate conventions live.

Frames
------
* **Input frame**: 0-based pixels of the network input, ``input_size = (W_in, H_in)`` (width first), pixel
  centres at integers, so the input spans ``[-0.5, W_in - 0.5]`` and the horizontal flip is ``x -> W_in - 1 - x``.
  ``encode`` takes keypoints ``(B, K, 3)`` = (x, y, v) in this frame; decoders return ``coords (B, K, 2)`` in it
  and ``scores (B, K)``.
* **Heatmap frame** (convention A, MSRA/HRNet/mmpose ``MSRAHeatmap``): heatmap pixel ``(i, j)`` sits at input
  ``(i * s_x, j * s_y)`` with ``s = input_size / heatmap_size`` per axis (``stride``, may be non-integer).
  Encoding: Gaussian peak at ``mu = floor(x / s + 0.5)`` (nearest heatmap pixel); ``unbiased=True`` centres it at
  the float ``x / s`` instead. Decoding: ``x_in = x_h * s``.
* **Normalised frame** (regression, soft-argmax): ``(x / W_in, y / H_in)``; a heatmap column ``i`` is ``i / W_h``,
  which equals ``(i * s) / W_in`` -- the same convention-A position.

The +-0.5 reasoning
-------------------
* Round (``+0.5`` then floor) at encode and **no** ``+0.5`` at decode form a matched pair: the quantisation error
  ``x/s - round(x/s)`` lies in ``[-0.5, 0.5)`` heatmap px and averages to zero. Convention B (Newell/HigherHRNet)
  floors at encode and adds ``+0.5`` at decode -- also unbiased. Mixing A-encode with B-decode shifts every
  prediction by ``+0.5`` heatmap px (= 2 input px at stride 4). Do not add ``0.5`` anywhere in this package's
  outputs.
* A rounded target is symmetric about an integer, so the quarter offset never fires on it: with round encoding the
  argmax/quarter decoders recover ``round(x/s)`` and the worst-case error is 0.5 heatmap px (0.25 on average).
  Quarter offset gives <= 0.25 px only for sub-pixel (unbiased) maps, whose higher neighbour reveals the side.
* Convention A covers input positions ``[-s/2, (W_h - 1/2) s)``; input pixels beyond ``(W_h - 1) s`` (the last
  ``s - 1`` input px, e.g. x in (252, 255] for 256 -> 64) have their nearest heatmap pixel outside or at the last
  column, so argmax-type decoders cannot reach them (error up to ``1 - 1/s`` heatmap px there); DARK extrapolates
  with border-shifted stencils and does reach them.
* Flip: ``flip(-1)`` of a heatmap maps input ``x`` to ``(W_h - 1) s - x`` while the image flip gives
  ``W_in - 1 - x = W_h s - 1 - x``: the flipped map is ``1 - 1/s`` heatmap px too far left (0.75 px = 3 input px at
  stride 4, 0.875 at stride 8, 0 at stride 1). ``HeatmapCodec.flip_back`` shifts right by exactly ``1 - 1/s``
  (cubic interpolation, peaks continued across the border; default ``"exact"``). HRNet/mmpose shift by one whole
  pixel, which over-corrects by ``1/s`` heatmap px (+1 input px); available as ``shift="pixel"``. UDP-style
  ``align_corners`` grids would need no shift; we do not use them.
* DARK: blur (kernel 11 -> sigma 2), ``log``, one Newton step from the integer maximum with 3-point stencils that
  move inwards at the border. The reference blur zero-pads and drags peaks within ~4 px of the border up to 1 px
  inwards; we continue each map across its border with a log-quadratic extrapolation first (exact for Gaussians).
  Measured round-trip error with unbiased targets: <= 0.007 heatmap px everywhere in the input, borders included.
* Regression flip on normalised coords: ``x -> 1 - x - 1/W_in`` (exactly ``W_in - 1 - x_in``), then permute.

Targets
-------
* ``HeatmapCodec.encode``: peak-1 Gaussians, square window of radius ``3 sigma`` heatmap px around the centre;
  weight ``= (v > 0)`` and 0 when the window misses the map; weight-0 joints get all-zero maps; optional CPM
  background channel ``max(0, 1 - max_k H_k)`` appended last.
* ``RegressionCodec.encode``: ``(x / W_in, y / H_in)``; weight ``(v > 0)`` and inside ``[0, W-1] x [0, H-1]``.
* ``DiskCodec.encode``: binary disk of radius ``r`` heatmap px around the float heatmap position.
* ``soft_argmax``: ``P = softmax(beta * logits)`` over H*W, ``x = sum P * i / W``; optional Debias.

The contract
------------
Every codec is a :class:`~lightning_pose.codecs.base.Codec`: ``encode(keypoints, ...) -> dict`` of named
targets/weights (its ``target_keys``) and ``decode(outputs...) -> (coords, scores)`` in the input frame:
``HeatmapCodec``, ``RegressionCodec``, ``DiskCodec``, ``IntegralCodec`` (soft-argmax), ``HybridCodec`` (the hybrid
method's three branches and fusion) and ``AssociativeEmbeddingCodec`` (bottom-up; ``(B, P, K, 2)`` coords).

Public API
----------
``Codec``, ``HeatmapCodec``, ``RegressionCodec``, ``DiskCodec``, ``IntegralCodec``, ``HybridCodec``, ``soft_argmax``,
``heatmap_scores`` and the building blocks
``gaussian_heatmaps``, ``background_channel``, ``heatmap_maximum``, ``quarter_offset``, ``gaussian_blur``,
``dark_refine``, ``flip_heatmaps``, ``flip_normalized_coords``, ``heatmap_flip_shift``, ``shift_maps_x``.
"""

from lightning_pose.codecs.base import Codec
from lightning_pose.codecs.decode import dark_refine, gaussian_blur, heatmap_maximum, heatmap_scores, quarter_offset
from lightning_pose.codecs.disk import DiskCodec
from lightning_pose.codecs.flip import flip_heatmaps, flip_normalized_coords, heatmap_flip_shift, shift_maps_x
from lightning_pose.codecs.heatmap import HeatmapCodec, background_channel, gaussian_heatmaps
from lightning_pose.codecs.hybrid import HybridCodec
from lightning_pose.codecs.integral import IntegralCodec, soft_argmax
from lightning_pose.codecs.regression import RegressionCodec

__all__ = [
    "Codec",
    "HeatmapCodec",
    "RegressionCodec",
    "DiskCodec",
    "IntegralCodec",
    "HybridCodec",
    "soft_argmax",
    "heatmap_scores",
    "gaussian_heatmaps",
    "background_channel",
    "heatmap_maximum",
    "quarter_offset",
    "gaussian_blur",
    "dark_refine",
    "flip_heatmaps",
    "flip_normalized_coords",
    "heatmap_flip_shift",
    "shift_maps_x",
]
