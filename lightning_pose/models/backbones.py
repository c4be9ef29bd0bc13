"""timm feature backbones shared by every method (SimpleBaseline, DeepPose, hybrid, ...).

A backbone maps an image batch ``(B, 3, H, W)`` (input frame, ImageNet-normalised RGB) to a list of
feature maps; entry ``i`` has shape ``(B, channels[i], ceil(H / reductions[i]), ceil(W / reductions[i]))``
for the usual ResNet-like stems (timm convolutions pad "same"-style, so odd sizes round up).

Nothing is downloaded unless the caller asks for ``pretrained=True``. When the weights cannot be downloaded (no
network) and are not in the Hugging Face cache, :func:`create_backbone` raises one
:class:`~lightning_pose.errors.ConfigError` line saying so and how to proceed, instead of the hub's retries and
tracebacks; when the hub's host does not even resolve, only the local cache is tried (no ~50 s of retries).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlparse

import torch
from torch import Tensor, nn

from lightning_pose.errors import ConfigError

__all__ = ["TimmBackbone", "create_backbone"]


class TimmBackbone(nn.Module):
    """Wrap a timm ``features_only`` network and expose its feature geometry.

    Attributes:
        name: the timm model name the backbone was built from.
        body: the timm feature extractor (``FeatureListNet`` or similar).
        channels: channel count of each returned feature map, in output order.
        reductions: input-pixels-per-feature-pixel (stride) of each returned map, in output order.
    """

    def __init__(self, body: nn.Module, name: str) -> None:
        super().__init__()
        info = getattr(body, "feature_info", None)
        if info is None or not hasattr(info, "channels") or not hasattr(info, "reduction"):
            raise TypeError(f"timm model {name!r} has no feature_info; build it with features_only=True")
        self.name = name
        self.body = body
        self.channels: list[int] = [int(c) for c in info.channels()]
        self.reductions: list[int] = [int(r) for r in info.reduction()]

    def forward(self, x: Tensor) -> list[Tensor]:
        """Return the selected feature maps.

        Args:
            x: ``(B, 3, H, W)`` image batch in the input frame.

        Returns:
            list of ``(B, channels[i], ~H / reductions[i], ~W / reductions[i])`` tensors.
        """
        if x.dim() != 4:
            raise ValueError(f"backbone {self.name!r} expects a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
        feats = self.body(x)
        if isinstance(feats, dict):
            feats = list(feats.values())
        elif isinstance(feats, torch.Tensor):
            feats = [feats]
        return list(feats)


def create_backbone(
    name: str = "resnet50",
    *,
    pretrained: bool = False,
    out_indices: Sequence[int] = (-1,),
    **timm_kwargs: Any,
) -> nn.Module:
    """Build a timm ``features_only`` backbone.

    Args:
        name: any timm model name supporting ``features_only`` (``resnet18``, ``resnet50``, ``hrnet_w32``, ...).
        pretrained: load timm's pretrained weights (downloads them; keep ``False`` in tests and offline runs).
        out_indices: which feature levels to return (timm indexing; negative indices count from the deepest,
            ``(-1,)`` = the last, stride-32 map of a ResNet).
        **timm_kwargs: forwarded to ``timm.create_model`` (e.g. ``drop_path_rate``, ``output_stride``).

    Returns:
        a :class:`TimmBackbone`; ``.channels`` and ``.reductions`` are lists aligned with ``out_indices``, and
        ``forward(x)`` returns a list of feature tensors ``(B, C_i, H / r_i, W / r_i)``.

    Raises:
        ValueError: unknown model name, a model that cannot return intermediate features, or bad ``out_indices``.
        ConfigError: ``pretrained=True`` and the weights can neither be downloaded nor found in the local cache.
    """
    import timm  # imported lazily: timm is slow to import and only needed when a backbone is built

    if not isinstance(name, str) or not name:
        raise ValueError(f"backbone name must be a non-empty string, got {name!r}")
    indices = tuple(int(i) for i in out_indices)
    if not indices:
        raise ValueError(f"backbone {name!r}: out_indices must select at least one feature level")
    for key in ("features_only", "out_indices", "pretrained"):
        if key in timm_kwargs:
            raise ValueError(f"backbone {name!r}: {key!r} is set by create_backbone, do not pass it in timm_kwargs")
    if not timm.is_model(name):
        raise ValueError(f"unknown timm backbone {name!r} (see timm.list_models())")
    try:
        with _hub_cache_only_when_unreachable(pretrained):
            body = timm.create_model(
                name, pretrained=pretrained, features_only=True, out_indices=indices, **timm_kwargs
            )
    except Exception as err:
        if pretrained and _is_download_failure(err):
            raise _offline_error(name) from None
        if isinstance(err, (RuntimeError, IndexError, AssertionError)):
            raise ValueError(f"cannot build timm backbone {name!r} with out_indices={indices}: {err}") from err
        raise
    return TimmBackbone(body, name)


#: exception class names (any module) that mean "the weights could not be fetched over the network"
_DOWNLOAD_FAILURES = (
    "LocalEntryNotFoundError",
    "OfflineModeIsEnabled",
    "ConnectError",
    "ConnectTimeout",
    "ReadTimeout",
    "ConnectionError",
    "URLError",
    "gaierror",
    "MaxRetryError",
    "NewConnectionError",
)


def _is_download_failure(err: BaseException) -> bool:
    """Whether ``err`` (or one of its causes) is a network / hub-cache failure rather than a model error."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (ConnectionError, TimeoutError, socket.gaierror)):
            return True
        if type(current).__name__ in _DOWNLOAD_FAILURES:
            return True
        current = current.__cause__ or current.__context__
    return False


def _hub_endpoint_and_cache() -> tuple[str, str]:
    try:
        from huggingface_hub import constants

        return str(constants.ENDPOINT), str(constants.HF_HUB_CACHE)
    except ImportError:  # pragma: no cover - timm depends on huggingface_hub
        return "https://huggingface.co", "~/.cache/huggingface/hub"


@contextlib.contextmanager
def _hub_cache_only_when_unreachable(pretrained: bool) -> Iterator[None]:
    """When the hub's host name does not resolve (no network), switch the hub to its offline mode for the call, so
    that a cached copy is used at once and a missing one fails at once (instead of minutes of retries)."""
    if not pretrained:
        yield
        return
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover
        yield
        return
    host = urlparse(str(constants.ENDPOINT)).hostname
    offline = bool(constants.HF_HUB_OFFLINE)
    if not offline and host:
        try:
            socket.getaddrinfo(host, 443)
        except OSError:
            offline = True
    saved = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = offline
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved


def _offline_error(name: str) -> ConfigError:
    endpoint, cache = _hub_endpoint_and_cache()
    return ConfigError(
        f"pretrained: true: the ImageNet weights of timm backbone {name!r} could not be downloaded from {endpoint} "
        f"and are not in the local Hugging Face cache {cache} (the machine seems offline). Either set "
        "pretrained: false (random initialisation), or fetch the weights once on a machine with internet "
        f"(python -c \"import timm; timm.create_model('{name}', pretrained=True)\") and copy its Hugging Face "
        "cache here (HF_HOME / HF_HUB_CACHE point to it; HF_HUB_OFFLINE=1 then uses it without network)"
    )
