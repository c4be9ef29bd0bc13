"""The device half of the GPU augmentation path: decode, warp, photometric augmentation and normalisation of a
whole batch on the batch's device (CUDA in production; the same code runs on CPU tensors).

Input: a batch collated from :class:`~lightning_pose.data.datasets.topdown_bytes.TopDownBytesDataset` (the file
bytes, the image sizes, ``crop_to_image`` and the photometric parameters drawn in the worker). Output: the same
batch with ``image`` ``(B, 3, H_in, W_in)`` float32, ImageNet-normalised RGB, and the worker-only keys removed, i.e.
exactly the top-down sample dict of ARCHITECTURE.md, so tasks and codecs are unchanged.

Warp convention: ``grid_sample`` with ``align_corners=False`` puts normalised coordinate -1 on the outer edge of
pixel 0 and +1 on the outer edge of the last pixel, so pixel ``x`` (centre at integer ``x``) sits at
``(2 x + 1) / W - 1``: the same pixel-centre convention as ``cv2.warpAffine`` and :mod:`lightning_pose.data.geometry`.
The per-sample theta is ``N_image o crop_to_image o N_input^-1`` with ``N`` those pixel -> normalised maps; the
images of a batch are zero-padded at the right / bottom to the batch's largest size (``N_image`` uses the padded
size, and zeros padding equals cv2's constant-0 border). Bilinear, zeros outside the image, as the CPU path.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_pose.data.datasets.topdown_bytes import ENCODED_KEY, EncodedImages
from lightning_pose.data.records import DataProblem, DatasetError
from lightning_pose.data.transforms.image_io import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["decode_images", "crop_theta", "warp_images", "photometric", "normalize", "augment_batch", "WORKER_KEYS"]

#: batch keys that only the device path reads; removed from the batch it returns
WORKER_KEYS = (ENCODED_KEY,)

_GRAY = (0.299, 0.587, 0.114)


def _decoder() -> Any:
    with warnings.catch_warnings():  # torchvision >= 0.29 flags its image codecs as superseded by TorchCodec
        warnings.simplefilter("ignore", DeprecationWarning)
        import torchvision.io as tio
    return tio


def _decode_one(tio: Any, data: Tensor, file: str, record: str, device: torch.device) -> Tensor:
    try:
        if data[:2].tolist() == [0xFF, 0xD8]:
            out = tio.decode_jpeg(
                data, mode=tio.ImageReadMode.RGB, device=device, apply_exif_orientation=device.type == "cpu"
            )
        else:
            out = tio.decode_image(data, mode=tio.ImageReadMode.RGB, apply_exif_orientation=True).to(device)
    except RuntimeError as exc:
        raise DatasetError(
            DataProblem(
                file=file,
                record=record,
                problem=f"cannot decode the image: {str(exc).splitlines()[0]}",
                kind="unreadable_image",
            )
        ) from None
    return out


def decode_images(
    encoded: EncodedImages, sizes: Tensor | None = None, device: torch.device | str = "cpu"
) -> list[Tensor]:
    """Decode a batch of encoded images to ``(3, H, W)`` uint8 RGB tensors on ``device``.

    JPEGs are decoded together with ``torchvision.io.decode_jpeg`` (nvjpeg when ``device`` is CUDA; the EXIF
    orientation is applied on CPU, as ``cv2.imread`` does; nvjpeg cannot apply it), other formats with
    ``decode_image`` on the CPU. ``sizes`` ``(B, 2)`` = expected ``(W, H)``: a mismatch raises DatasetError
    naming the file (the record's size and the file disagree).
    """
    device = torch.device(device)
    tio = _decoder()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        jpeg = [i for i, d in enumerate(encoded.data) if d.numel() > 2 and d[:2].tolist() == [0xFF, 0xD8]]
        out: list[Tensor | None] = [None] * len(encoded)
        if jpeg:
            try:
                decoded = tio.decode_jpeg(
                    [encoded.data[i] for i in jpeg],
                    mode=tio.ImageReadMode.RGB,
                    device=device,
                    apply_exif_orientation=device.type == "cpu",
                )
            except RuntimeError:  # find the culprit and name its file
                decoded = [
                    _decode_one(tio, encoded.data[i], encoded.files[i], encoded.records[i], device) for i in jpeg
                ]
            for i, img in zip(jpeg, decoded):
                out[i] = img
        for i in range(len(encoded)):
            if out[i] is None:
                out[i] = _decode_one(tio, encoded.data[i], encoded.files[i], encoded.records[i], device)
    images = [o for o in out if o is not None]
    if sizes is not None:
        for i, (img, (w, h)) in enumerate(zip(images, sizes.tolist())):
            if tuple(img.shape[1:]) != (h, w):
                raise DatasetError(
                    DataProblem(
                        file=encoded.files[i],
                        record=encoded.records[i],
                        problem=f"decoded image is {img.shape[2]}x{img.shape[1]} px but the annotation says {w}x{h}",
                        kind="image_size",
                    )
                )
    return images


def crop_theta(crop_to_image: Tensor, input_size: Sequence[int], image_hw: Sequence[int]) -> Tensor:
    """``affine_grid`` thetas ``(B, 2, 3)`` (float32) of the crops.

    Args:
        crop_to_image: ``(B, 2, 3)`` input frame -> image frame pixel matrices.
        input_size: ``(W_in, H_in)`` of the crops.
        image_hw: ``(H, W)`` of the (padded) source tensor the grid samples from.
    """
    a = crop_to_image.to(torch.float64)
    b = a.shape[0]
    w_in, h_in = float(input_size[0]), float(input_size[1])
    h_img, w_img = float(image_hw[0]), float(image_hw[1])
    # normalised input -> input pixels: x = (W/2) u + (W-1)/2 ; image pixels -> normalised: u = (2x+1)/W - 1
    out_inv = torch.tensor(
        [[w_in / 2, 0, (w_in - 1) / 2], [0, h_in / 2, (h_in - 1) / 2], [0, 0, 1]], dtype=torch.float64, device=a.device
    )
    img_norm = torch.tensor(
        [[2 / w_img, 0, 1 / w_img - 1], [0, 2 / h_img, 1 / h_img - 1], [0, 0, 1]], dtype=torch.float64, device=a.device
    )
    full = torch.cat([a, a.new_tensor([0.0, 0.0, 1.0]).expand(b, 1, 3)], dim=1)
    theta = img_norm @ full @ out_inv
    return theta[:, :2].to(torch.float32)


def warp_images(
    images: Sequence[Tensor],
    crop_to_image: Tensor,
    input_size: Sequence[int],
    downscale: Sequence[int] | Tensor | None = None,
) -> Tensor:
    """Warp decoded ``(3, H_b, W_b)`` uint8 images to ``(B, 3, H_in, W_in)`` float32 crops (values 0..255, not
    rounded) with ONE batched bilinear ``grid_sample`` (zeros outside the image), matching ``cv2.warpAffine``.

    ``downscale`` ``(B,)``: per-sample factor ``f`` in {1, 2, 4, 8} (``TopDownTransform.decode_downscale``, the CPU
    path's reduced decoding): the image is first averaged over ``f x f`` blocks (``avg_pool2d``, partial blocks at
    the right / bottom averaged over their pixels, like the ``ceil(W / f)`` size of a DCT-scaled JPEG decode) and
    warped with the matrix composed with the block map (reduced pixel ``i`` = original ``f i + (f - 1) / 2``), so a
    crop that shrinks the person by ``f`` or more is not aliased. Keypoints and ``crop_to_image`` do not change.
    """
    device = images[0].device
    a = crop_to_image.to(device=device, dtype=torch.float64)
    if downscale is not None:
        factors = [int(f) for f in (downscale.tolist() if isinstance(downscale, Tensor) else downscale)]
        if any(f > 1 for f in factors):
            images = [
                F.avg_pool2d(im[None].float(), f, ceil_mode=True)[0] if f > 1 else im for im, f in zip(images, factors)
            ]
            f = torch.tensor(factors, dtype=torch.float64).to(device)
            a = a / f.view(-1, 1, 1)  # full -> reduced pixels: x_r = (x - (f - 1) / 2) / f
            a[:, :, 2] -= ((f - 1) / (2 * f)).view(-1, 1)
    h_max = max(int(im.shape[1]) for im in images)
    w_max = max(int(im.shape[2]) for im in images)
    canvas = torch.zeros((len(images), 3, h_max, w_max), dtype=torch.float32, device=device)
    for b, im in enumerate(images):
        canvas[b, :, : im.shape[1], : im.shape[2]] = im
    w_in, h_in = int(input_size[0]), int(input_size[1])
    theta = crop_theta(a, input_size, (h_max, w_max))
    grid = F.affine_grid(theta, [len(images), 3, h_in, w_in], align_corners=False)
    return F.grid_sample(canvas, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


# ---------------------------------------------------------------------- photometric ops on [0, 1] images
def _gray(x: Tensor) -> Tensor:
    return (_GRAY[0] * x[:, 0] + _GRAY[1] * x[:, 1] + _GRAY[2] * x[:, 2]).unsqueeze(1)


def _shift_hue(x: Tensor, shift: Tensor) -> Tensor:
    """Rotate the HSV hue of ``(n, 3, H, W)`` RGB in [0, 1] by ``shift`` ``(n,)`` turns."""
    r, g, b = x.unbind(1)
    maxc, _ = x.max(1)
    minc, _ = x.min(1)
    delta = maxc - minc
    sat = torch.where(maxc > 0, delta / maxc.clamp_min(1e-12), torch.zeros_like(maxc))
    dc = delta.clamp_min(1e-12)
    rc, gc, bc = (maxc - r) / dc, (maxc - g) / dc, (maxc - b) / dc
    hue = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc)) / 6.0
    hue = torch.where(delta > 0, hue, torch.zeros_like(hue))
    hue = torch.remainder(hue + shift.view(-1, 1, 1), 1.0)
    # HSV -> RGB: channel c = v - v s clamp(min(k, 4 - k), 0, 1) with k = (n_c + 6 h) mod 6, n = 5, 3, 1
    h6 = (hue * 6.0).unsqueeze(1)
    k = torch.remainder(torch.tensor([5.0, 3.0, 1.0], device=x.device, dtype=x.dtype).view(1, 3, 1, 1) + h6, 6.0)
    ramp = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
    return maxc.unsqueeze(1) * (1.0 - sat.unsqueeze(1) * ramp)


def _jitter(x: Tensor, p: Tensor) -> Tensor:
    """Brightness, contrast, saturation (multipliers) then hue (turns); ``p`` ``(n, 5)`` as ``JITTER_FIELDS``."""
    shift = bool((p[:, 4] != 0).any())  # p is on the CPU: no device sync
    p = p.to(x.device, x.dtype, non_blocking=True)
    view = (-1, 1, 1, 1)
    x = (x * p[:, 1].view(view)).clamp_(0, 1)
    mean = _gray(x).mean(dim=(1, 2, 3), keepdim=True)
    x = torch.lerp(mean.expand_as(x), x, p[:, 2].view(view)).clamp_(0, 1)
    x = torch.lerp(_gray(x).expand_as(x), x, p[:, 3].view(view)).clamp_(0, 1)
    if shift:
        x = _shift_hue(x, p[:, 4])
    return x


def _blur(x: Tensor, p: Tensor) -> Tensor:
    """Separable Gaussian blur, per-sample odd kernel ``p[:, 1]`` and sigma ``p[:, 2]`` px, reflect-101 border."""
    n, c, h, w = x.shape
    size = int(p[:, 1].max())
    half = size // 2
    r = torch.arange(-half, half + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (r[None] / p[:, 2:3]) ** 2) * (r[None].abs() <= (p[:, 1:2] // 2))
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0).to(x.device, x.dtype, non_blocking=True)  # (n*c, size)
    y = F.pad(x.reshape(1, n * c, h, w), (half, half, half, half), mode="reflect")
    y = F.conv2d(y, k.view(n * c, 1, size, 1), groups=n * c)
    y = F.conv2d(y, k.view(n * c, 1, 1, size), groups=n * c)
    return y.view(n, c, h, w)


def _noise(x: Tensor, p: Tensor, generator: torch.Generator | None) -> Tensor:
    n, c, h, w = x.shape
    sf = float(p[0, 2])
    hs, ws = max(1, round(h * sf)), max(1, round(w * sf))
    field = torch.randn((n, c, hs, ws), generator=generator, device=x.device, dtype=x.dtype)
    if (hs, ws) != (h, w):
        field = F.interpolate(field, size=(h, w), mode="bilinear", align_corners=False)
    std = p[:, 1].to(x.device, x.dtype, non_blocking=True).view(-1, 1, 1, 1)
    return (x + field * std).clamp_(0, 1)


def _occlude(x: Tensor, holes: Tensor, generator: torch.Generator | None) -> Tensor:
    n, c, h, w = x.shape
    holes = holes.to(x.device, non_blocking=True)
    xs = torch.arange(w, device=x.device, dtype=holes.dtype).view(1, 1, 1, w)
    ys = torch.arange(h, device=x.device, dtype=holes.dtype).view(1, 1, h, 1)
    hx0, hy0, hx1, hy1 = (holes[..., j].view(n, -1, 1, 1) for j in range(4))
    mask = ((xs >= hx0) & (xs < hx1) & (ys >= hy0) & (ys < hy1)).any(1, keepdim=True)  # (n, 1, H, W)
    fill = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return torch.where(mask, fill, x)


def photometric(
    x: Tensor, jitter: Tensor, blur: Tensor, noise: Tensor, holes: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """Photometric and occlusion augmentation of ``(B, 3, H, W)`` RGB in [0, 1] with the per-sample parameters
    drawn in the worker (``gpu_params``); each op runs only on the samples that drew it. Returns a new tensor.

    The parameters are read on the CPU (``.cpu()`` is a no-op for the batches of the device path, whose parameters
    stay there), so choosing the samples costs no device synchronisation.
    """
    jitter, blur, noise, holes = (t.cpu() for t in (jitter, blur, noise, holes))
    x = x.clone()
    ops = (
        (jitter[:, 0] > 0, lambda s, i: _jitter(s, jitter[i])),
        (blur[:, 0] > 0, lambda s, i: _blur(s, blur[i])),
        (noise[:, 0] > 0, lambda s, i: _noise(s, noise[i], generator)),
        ((holes[..., 2] > holes[..., 0]).any(1), lambda s, i: _occlude(s, holes[i], generator)),
    )
    for chosen, op in ops:
        idx = torch.nonzero(chosen).flatten()
        if idx.numel() == len(x):
            x = op(x, idx)
        elif idx.numel():
            dev_idx = idx.to(x.device, non_blocking=True)
            x[dev_idx] = op(x[dev_idx], idx)
    return x


def normalize(x: Tensor) -> Tensor:
    """``(B, 3, H, W)`` RGB in [0, 1] -> ImageNet-normalised (in place)."""
    mean = torch.as_tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.as_tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return x.sub_(mean).div_(std)


def augment_batch(
    batch: dict[str, Any],
    input_size: Sequence[int],
    *,
    photometric_on: bool = True,
    generator: torch.Generator | None = None,
) -> dict[str, Any]:
    """Turn a collated bytes batch into the standard top-down batch on the device of ``crop_to_image``.

    ``photometric_on=False`` skips the photometric ops whatever the parameters say (for tests and benchmarks).
    ``generator`` drives the device-side random fields (noise, occluder fill); default: the global stream.
    """
    encoded = batch[ENCODED_KEY]
    if not isinstance(encoded, EncodedImages):
        raise TypeError(f"batch[{ENCODED_KEY!r}] must be EncodedImages (use collate_encoded), got {type(encoded)}")
    device = batch["crop_to_image"].device
    params = encoded.params
    images = decode_images(encoded, params.get("image_size"), device)
    x = warp_images(images, batch["crop_to_image"], input_size, params.get("downscale")).div_(255.0)
    if photometric_on and "photo_jitter" in params:
        x = photometric(
            x, params["photo_jitter"], params["photo_blur"], params["photo_noise"], params["photo_holes"], generator
        )
    out = {k: v for k, v in batch.items() if k not in WORKER_KEYS}
    out["image"] = normalize(x)
    return out
