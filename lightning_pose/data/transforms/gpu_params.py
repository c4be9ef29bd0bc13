"""Per-sample photometric parameters of the device (GPU) augmentation path, drawn in the data worker (numpy).

The device path (``augment_on: gpu``) draws the crop geometry in the worker with the CPU path's own code
(:meth:`TopDownTransform.sample_params` / :meth:`TopDownTransform.matrix`); this module draws the pixel-level
settings of the same :class:`PhotometricAugmentation` fields from the same generator, as fixed-size arrays
that collate into batches. Only the random *fields* (noise pixels, occluder fill) are drawn on the device.

Semantics (per sample, each op applied with its own probability, in this fixed order):

* colour jitter (``color_jitter_prob``): brightness, contrast, saturation multipliers from
  ``U(1 - f, 1 + f)`` and a hue shift from ``U(-hue, hue)`` (fraction of the hue circle), applied in the order
  brightness, contrast, saturation, hue (albumentations shuffles the order; the ranges are the same);
* Gaussian blur (``blur_prob``): odd kernel size from ``{3, 5, ..., blur_max_kernel}``, sigma ``U(0.5, 3.0)``
  pixels (albumentations' ``GaussianBlur`` defaults);
* Gaussian noise (``noise_prob``): std ``U(0, noise_std)`` (fraction of the intensity range), field drawn at
  ``noise_scale_factor`` of the crop resolution and bilinearly upsampled;
* occlusion (``occlusion_prob``): ``1..occlusion_max_holes`` rectangles, each side ``U(0.05, max_size)`` of
  the crop side, uniformly placed inside the crop, filled with uniform random values.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from lightning_pose.data.transforms.photometric import PhotometricAugmentation

__all__ = ["draw_photometric_params", "JITTER_FIELDS", "BLUR_FIELDS", "NOISE_FIELDS", "HOLE_FIELDS"]

#: columns of ``photo_jitter``: applied flag, brightness, contrast, saturation multipliers, hue shift (turns)
JITTER_FIELDS = ("apply", "brightness", "contrast", "saturation", "hue")
#: columns of ``photo_blur``: applied flag, odd kernel size in pixels, sigma in pixels
BLUR_FIELDS = ("apply", "kernel", "sigma")
#: columns of ``photo_noise``: applied flag, std (fraction of the [0, 1] intensity range), field scale factor
NOISE_FIELDS = ("apply", "std", "scale_factor")
#: columns of each ``photo_holes`` row: x0, y0, x1, y1 in input-frame pixels (half-open; all 0 = no hole)
HOLE_FIELDS = ("x0", "y0", "x1", "y1")


def draw_photometric_params(
    settings: PhotometricAugmentation,
    input_size: Sequence[int],
    rng: np.random.Generator,
    enabled: bool = True,
) -> dict[str, np.ndarray]:
    """Draw one sample's photometric parameters.

    Args:
        settings: the augmentation settings (probabilities and ranges).
        input_size: ``(W_in, H_in)`` of the crop in pixels.
        rng: the generator to draw from (the sample transform's own, seeded per worker).
        enabled: ``False`` (val/test) gives parameters that leave the crop unchanged; nothing is drawn.

    Returns:
        ``photo_jitter (5,)``, ``photo_blur (3,)``, ``photo_noise (3,)`` float32 and ``photo_holes
        (occlusion_max_holes, 4)`` float32 input-frame pixel rectangles (see the ``*_FIELDS`` constants).
    """
    s = settings
    w_in, h_in = int(input_size[0]), int(input_size[1])
    jitter = np.array([0.0, 1.0, 1.0, 1.0, 0.0])
    blur = np.array([0.0, 1.0, 0.0])
    noise = np.array([0.0, 0.0, s.noise_scale_factor])
    holes = np.zeros((s.occlusion_max_holes, 4))
    if enabled:
        if s.color_jitter_prob > 0 and rng.random() < s.color_jitter_prob:
            jitter[0] = 1.0
            for i, f in enumerate((s.brightness, s.contrast, s.saturation), start=1):
                jitter[i] = rng.uniform(1.0 - f, 1.0 + f)
            jitter[4] = rng.uniform(-s.hue, s.hue) if s.hue > 0 else 0.0
        if s.blur_prob > 0 and rng.random() < s.blur_prob:
            blur[:] = (1.0, 2 * rng.integers(1, s.blur_max_kernel // 2 + 1) + 1, rng.uniform(0.5, 3.0))
        if s.noise_prob > 0 and rng.random() < s.noise_prob:
            noise[:2] = (1.0, rng.uniform(0.0, s.noise_std))
        if s.occlusion_prob > 0 and rng.random() < s.occlusion_prob:
            for j in range(int(rng.integers(1, s.occlusion_max_holes + 1))):
                hw = max(1, int(round(rng.uniform(0.05, s.occlusion_max_size) * w_in)))
                hh = max(1, int(round(rng.uniform(0.05, s.occlusion_max_size) * h_in)))
                x0 = int(rng.integers(0, w_in - hw + 1))
                y0 = int(rng.integers(0, h_in - hh + 1))
                holes[j] = (x0, y0, x0 + hw, y0 + hh)
    return {
        "photo_jitter": jitter.astype(np.float32),
        "photo_blur": blur.astype(np.float32),
        "photo_noise": noise.astype(np.float32),
        "photo_holes": holes.astype(np.float32),
    }
