"""Photometric and occlusion augmentation of an already cropped image (albumentations, pixel-level only).

All transforms used here are pixel-level (colour jitter, Gaussian blur, Gaussian noise, coarse dropout),
so they never move keypoints; the geometry is done by one affine warp in the top-down / bottom-up
transforms. Coarse dropout paints rectangles over the crop (synthetic occluders); the keypoints under
them keep their visibility code (the network is asked to infer occluded joints, as for real occlusion).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import cv2
import numpy as np

if TYPE_CHECKING:  # albumentations imports torch: load it only when a pipeline is built
    import albumentations as A

__all__ = ["PhotometricAugmentation", "build_photometric", "apply_photometric"]


@dataclass
class PhotometricAugmentation:
    """Pixel-level augmentation settings shared by the top-down and bottom-up pipelines.

    Probabilities are per sample. Colour factors follow ``albumentations.ColorJitter`` (a factor ``b``
    means a multiplier drawn from ``[1 - b, 1 + b]``; hue is a fraction of the hue circle, off by default
    because its HSV round trip costs ~0.4 ms per 256x192 crop).
    Noise std is a fraction of 255; ``noise_scale_factor`` < 1 draws the noise field at that fraction of
    the resolution and upsamples it (0.5: 2x2-pixel grain, ~6x faster than per-pixel noise at 256x192).
    Occlusion holes are sized as fractions of the crop height / width.
    """

    color_jitter_prob: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.0
    blur_prob: float = 0.1
    blur_max_kernel: int = 5
    noise_prob: float = 0.1
    noise_std: float = 0.04
    noise_scale_factor: float = 0.5
    occlusion_prob: float = 0.0
    occlusion_max_holes: int = 3
    occlusion_max_size: float = 0.25

    def validate_photometric(self) -> None:
        """Raise ``ValueError`` naming the field when a setting is out of range."""
        for name in ("color_jitter_prob", "blur_prob", "noise_prob", "occlusion_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"augmentation.{name} must be a probability in [0, 1], got {value}")
        for name in ("brightness", "contrast", "saturation"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"augmentation.{name} must be in [0, 1), got {value}")
        if not 0.0 <= self.hue <= 0.5:
            raise ValueError(f"augmentation.hue must be in [0, 0.5], got {self.hue}")
        if self.blur_max_kernel < 3 or self.blur_max_kernel % 2 == 0:
            raise ValueError(f"augmentation.blur_max_kernel must be an odd integer >= 3, got {self.blur_max_kernel}")
        if not 0.0 <= self.noise_std <= 1.0:
            raise ValueError(f"augmentation.noise_std must be in [0, 1] (fraction of 255), got {self.noise_std}")
        if not 0.0 < self.noise_scale_factor <= 1.0:
            raise ValueError(f"augmentation.noise_scale_factor must be in (0, 1], got {self.noise_scale_factor}")
        if self.occlusion_max_holes < 1:
            raise ValueError(f"augmentation.occlusion_max_holes must be >= 1, got {self.occlusion_max_holes}")
        if not 0.0 < self.occlusion_max_size <= 1.0:
            raise ValueError(f"augmentation.occlusion_max_size must be in (0, 1], got {self.occlusion_max_size}")


def build_photometric(settings: PhotometricAugmentation) -> "A.Compose | None":
    """The albumentations pipeline of ``settings`` (``None`` when every probability is 0).

    The returned ``Compose`` works on ``(H, W, 3)`` uint8 RGB images: ``pipeline(image=img)["image"]``.
    albumentations (which imports torch) is imported here, not at module import.
    """
    settings.validate_photometric()
    import albumentations as A

    ops: list[Any] = []
    if settings.color_jitter_prob > 0:
        ops.append(
            _color_jitter_class()(
                brightness=settings.brightness,
                contrast=settings.contrast,
                saturation=settings.saturation,
                hue=settings.hue,
                p=settings.color_jitter_prob,
            )
        )
    if settings.blur_prob > 0:
        ops.append(A.GaussianBlur(blur_limit=(3, settings.blur_max_kernel), p=settings.blur_prob))
    if settings.noise_prob > 0:
        ops.append(
            _gauss_noise_class()(
                std_range=(0.0, settings.noise_std),
                noise_scale_factor=settings.noise_scale_factor,
                p=settings.noise_prob,
            )
        )
    if settings.occlusion_prob > 0:
        ops.append(
            _coarse_dropout_class()(
                num_holes_range=(1, settings.occlusion_max_holes),
                hole_height_range=(0.05, settings.occlusion_max_size),
                hole_width_range=(0.05, settings.occlusion_max_size),
                fill="random_uniform",
                p=settings.occlusion_prob,
            )
        )
    if not ops:
        return None
    return A.Compose(ops)


#: ITU-R 601 luma weights of R, G, B (``cv2.COLOR_RGB2GRAY``, what albumentations' contrast and saturation use)
_GRAY_WEIGHTS = (0.299, 0.587, 0.114)

_COLOR_JITTER: type | None = None


def _color_jitter_class() -> type:
    """``albumentations.ColorJitter`` whose brightness / contrast / saturation run as ONE affine colour map (same
    parameters and random draws; built on first use so that this module does not import albumentations)."""
    global _COLOR_JITTER
    if _COLOR_JITTER is None:
        import albumentations as A

        class ColorJitter(A.ColorJitter):
            """``A.ColorJitter`` (same parameters, same random draws of the factors and of their order) whose ``apply``
            composes brightness, contrast and saturation into one ``3 x 4`` affine map of RGB values and applies it
            with one ``cv2.transform`` (rounded, saturated to uint8): about a third of the time of the three uint8
            passes. The pixels differ from albumentations' only where an intermediate step saturated or rounded
            (albumentations clips and rounds after each op; this clips once); hue (an HSV round trip) keeps the
            albumentations path."""

            def apply(
                self,
                img: np.ndarray,
                brightness: float,
                contrast: float,
                saturation: float,
                hue: float,
                order: list[int],
                **params: Any,
            ) -> np.ndarray:
                if hue != 0 or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
                    return super().apply(img, brightness, contrast, saturation, hue, order, **params)
                return color_affine(img, affine_color_map(brightness, contrast, saturation, order, img))

        ColorJitter.__module__ = __name__
        ColorJitter.__qualname__ = "ColorJitter"
        _COLOR_JITTER = ColorJitter
    return _COLOR_JITTER


def affine_color_map(
    brightness: float, contrast: float, saturation: float, order: Sequence[int], image: np.ndarray
) -> list[list[float]]:
    """The ``3 x 4`` affine map ``rgb -> M rgb + t`` (rows ``[M_i0, M_i1, M_i2, t_i]``, grey levels) of torchvision's
    colour jitter ops applied in ``order`` (0 brightness ``x b``, 1 contrast ``c x + (1 - c) m``, 2 saturation
    ``s x + (1 - s) grey(x)``, 3 hue: skipped, it must be 0), without clipping between the ops.

    The contrast mean ``m`` is the mean grey level of the image as it is at that point of the sequence: the linear
    image of the per-channel means of ``image`` (``(H, W, 3)`` RGB) under the ops before it. Plain Python floats
    (numpy's per-call overhead dominates 3 x 3 products)."""
    m = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]]
    wr, wg, wb = _GRAY_WEIGHTS
    means: tuple[float, ...] | None = None
    for op in order:
        if op == 0 and brightness != 1.0:
            m = [[v * brightness for v in row] for row in m]
        elif op == 1 and contrast != 1.0:
            if means is None:
                means = cv2.mean(image)[:3]
            mu = [row[0] * means[0] + row[1] * means[1] + row[2] * means[2] + row[3] for row in m]
            shift = (1.0 - contrast) * (wr * mu[0] + wg * mu[1] + wb * mu[2])
            m = [[v * contrast for v in row[:3]] + [row[3] * contrast + shift] for row in m]
        elif op == 2 and saturation != 1.0:
            g = [wr * m[0][j] + wg * m[1][j] + wb * m[2][j] for j in range(4)]
            rest = 1.0 - saturation
            m = [[saturation * row[j] + rest * g[j] for j in range(4)] for row in m]
    return m


def color_affine(image: np.ndarray, matrix: list[list[float]]) -> np.ndarray:
    """``(H, W, 3)`` uint8 -> ``round(clip(M x + t))`` uint8 per pixel with the ``3 x 4`` ``matrix`` (one
    ``cv2.transform``, whose uint8 path rounds the coefficients to 1/1024: within 1 grey level of the exact value;
    the identity returns ``image`` itself)."""
    if matrix == [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]]:
        return image
    return cv2.transform(image, np.array(matrix, dtype=np.float64))


_COARSE_DROPOUT: type | None = None
_MASK64 = (1 << 64) - 1


def _coarse_dropout_class() -> type:
    """``albumentations.CoarseDropout`` whose ``random_uniform`` fill colours come from a cheap hash of the op's seed
    (built on first use so that this module does not import albumentations)."""
    global _COARSE_DROPOUT
    if _COARSE_DROPOUT is None:
        import albumentations as A

        class CoarseDropout(A.CoarseDropout):
            """``A.CoarseDropout`` (same parameters, same random holes and seed) whose ``apply`` fills each hole of a
            uint8 image with one colour taken from :func:`hole_colours` of the drawn seed, instead of building a
            ``numpy.random.default_rng(seed)`` per application (its seeding costs more than the painting). The colours
            are uniform over 0..255 per channel, as albumentations' ``random_uniform``, but not the same values."""

            def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
                """The holes of albumentations' law (hole count uniform over ``num_holes_range``; height and width
                ``int(size x U(range))`` for fractional ranges; top-left corner uniform over the positions that keep
                the hole inside the image), drawn with the op's ``py_random`` (plain Python scalars: a fifth of the
                time of numpy's small-array draws). Integer size ranges keep albumentations' own draw."""
                if self.hole_height_range[1] >= 1 or self.hole_width_range[1] >= 1:
                    return super().get_params_dependent_on_data(params, data)
                height, width = params["shape"][:2]
                rand = self.py_random
                (h0, h1), (w0, w1) = self.hole_height_range, self.hole_width_range
                holes = []
                for _ in range(rand.randint(*self.num_holes_range)):
                    hh = int(height * rand.uniform(h0, h1))
                    hw = int(width * rand.uniform(w0, w1))
                    y0 = rand.randint(0, height - hh)
                    x0 = rand.randint(0, width - hw)
                    holes.append((x0, y0, x0 + hw, y0 + hh))
                return {"holes": np.array(holes, dtype=np.int64).reshape(-1, 4), "seed": rand.getrandbits(32)}

            def apply(self, img: np.ndarray, holes: np.ndarray, seed: int, **params: Any) -> np.ndarray:
                if self.fill != "random_uniform" or img.dtype != np.uint8 or img.ndim != 3 or holes.size == 0:
                    return super().apply(img, holes, seed, **params)
                out = img.copy()
                boxes = holes.tolist()
                for (x0, y0, x1, y1), colour in zip(boxes, hole_colours(int(seed), len(boxes), img.shape[2])):
                    out[y0:y1, x0:x1] = colour
                return out

        CoarseDropout.__module__ = __name__
        CoarseDropout.__qualname__ = "CoarseDropout"
        _COARSE_DROPOUT = CoarseDropout
    return _COARSE_DROPOUT


def hole_colours(seed: int, holes: int, channels: int) -> list[list[int]]:
    """``holes`` fill colours of ``channels`` grey levels (0..255 each), from SplitMix64 of ``seed`` (deterministic,
    uniform; plain Python integers: a few microseconds). At most 8 channels."""
    if channels > 8:
        raise ValueError(f"hole_colours gives at most 8 channels, got {channels}")
    out = []
    state = seed & _MASK64
    for _ in range(holes):
        state = (state + 0x9E3779B97F4A7C15) & _MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        z ^= z >> 31
        out.append([(z >> (8 * c)) & 255 for c in range(channels)])
    return out


_GAUSS_NOISE: type | None = None


def _gauss_noise_class() -> type:
    """``albumentations.GaussNoise`` with a cheaper, bit-identical ``apply`` (the class is built on first use so that
    this module does not import albumentations)."""
    global _GAUSS_NOISE
    if _GAUSS_NOISE is None:
        import albumentations as A

        class GaussNoise(A.GaussNoise):
            """``A.GaussNoise`` (same parameters and noise distribution) that draws its noise map in float32 with
            OpenCV's generator and adds it in one saturating pass.

            Noise map, for a uint8 ``(H, W, C)`` image with per-channel noise (the settings built here): ``sigma`` and
            ``mean`` drawn as albumentations does (``py_random.uniform`` over ``std_range`` / ``mean_range``, fractions
            of 255), then a ``(round(H f), round(W f), C)`` field of ``N(255 mean, 255 sigma)`` in float32
            (:func:`gaussian_field`, seeded from the op's ``random_generator``; ``f = noise_scale_factor``), bilinearly
            resized to ``(H, W)``: the map albumentations builds (same sizes, law and interpolation), not the same
            values (it draws float64 with numpy and resizes in float64, about three times the time). Any other image
            or setting keeps albumentations' draw.

            ``apply``: ``clip(img + trunc(noise), 0, 255)``, the value albucore's ``add`` gives for a uint8 image
            and a float noise map (it truncates the map, adds, clips), in about a fifth of its time."""

            def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
                image = data.get("image")
                if not (
                    isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and self.per_channel
                ):
                    return super().get_params_dependent_on_data(params, data)
                sigma = self.py_random.uniform(*self.std_range)
                mean = self.py_random.uniform(*self.mean_range)
                h, w, c = image.shape
                f = float(self.noise_scale_factor)
                hs, ws = (max(1, int(round(h * f))), max(1, int(round(w * f)))) if f < 1.0 else (h, w)
                noise = gaussian_field((hs, ws, c), 255.0 * mean, 255.0 * sigma, self.random_generator)
                if (hs, ws) != (h, w):
                    noise = cv2.resize(noise, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, c)
                return {"noise_map": noise}

            def apply(self, img: np.ndarray, noise_map: np.ndarray, **params: Any) -> np.ndarray:
                if img.dtype != np.uint8 or img.shape != noise_map.shape:
                    return super().apply(img, noise_map, **params)
                return add_truncated_noise(img, noise_map)

        GaussNoise.__module__ = __name__
        GaussNoise.__qualname__ = "GaussNoise"
        _GAUSS_NOISE = GaussNoise
    return _GAUSS_NOISE


#: a noise field whose every value lies within this many grey levels is truncated to int16 without clipping first
_INT16_SAFE = 32000.0


def gaussian_field(shape: tuple[int, ...], mean: float, std: float, rng: np.random.Generator) -> np.ndarray:
    """A float32 array of ``shape`` with independent ``N(mean, std)`` values (grey levels), drawn by ``cv2.randn``
    (about 5x faster than numpy's float32 normals) after seeding OpenCV's generator of this thread with a 31-bit
    integer drawn from ``rng``: the same ``rng`` state gives the same field. The last axis holds up to 4 channels
    (OpenCV scalars), else numpy draws it."""
    out = np.empty(shape, dtype=np.float32)
    channels = shape[-1] if len(shape) == 3 else 1
    if channels > 4:
        out[...] = rng.standard_normal(shape, dtype=np.float32) * np.float32(std) + np.float32(mean)
        return out
    cv2.setRNGSeed(int(rng.integers(0, 2**31 - 1)))
    cv2.randn(out, (float(mean),) * channels, (float(std),) * channels)  # type: ignore[call-overload]
    return out


def add_truncated_noise(image: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """``clip(image + trunc(noise), 0, 255)`` as uint8, for a uint8 ``image`` and a float ``noise`` map of the same
    shape, in grey levels (noise values beyond +-32000 are clipped first, so that the int16 map cannot wrap).

    One truncating conversion to int16 and one saturating ``cv2.add``."""
    noise = np.asarray(noise, dtype=np.float32)  # albucore rounds a float64 map to float32 before truncating
    if noise.size == 0:
        return image.copy()
    lo, hi = cv2.minMaxLoc(noise.reshape(noise.shape[0], -1))[:2]
    if not (-_INT16_SAFE <= lo and hi <= _INT16_SAFE):  # also when infinite
        noise = np.clip(noise, -_INT16_SAFE, _INT16_SAFE)
    return cv2.add(image, noise.astype(np.int16), dtype=cv2.CV_8U)  # astype truncates toward zero


def apply_photometric(pipeline: "A.Compose | None", image: np.ndarray) -> np.ndarray:
    """Run ``pipeline`` (random draws from its own generator, see ``Compose.set_random_seed``) on an
    ``(H, W, 3)`` uint8 RGB image; returns the image unchanged when ``pipeline`` is ``None``.

    The ops are called one after the other, without ``Compose.__call__``: its per-call work (argument and shape
    checks, processors) is for targets this image-only pipeline does not have, and its own random draw (``p = 1``)
    feeds nothing, because every op draws from its own generators. The output is the same, bit for bit.
    """
    if pipeline is None:
        return image
    for op in pipeline.transforms:
        image = op(image=image)["image"]
    return image


def __getattr__(name: str) -> Any:
    """``GaussNoise``, ``ColorJitter`` and ``CoarseDropout`` resolve lazily (unpickling a pipeline in a DataLoader worker started by spawn finds it here)."""
    if name == "GaussNoise":
        return _gauss_noise_class()
    if name == "ColorJitter":
        return _color_jitter_class()
    if name == "CoarseDropout":
        return _coarse_dropout_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
