"""timm feature backbones shared by every method (SimpleBaseline, DeepPose, hybrid, ...).

A backbone maps an image batch ``(B, 3, H, W)`` (input frame, ImageNet-normalised RGB) to a list of
feature maps; entry ``i`` has shape ``(B, channels[i], ceil(H / reductions[i]), ceil(W / reductions[i]))``
for the usual ResNet-like stems (timm convolutions pad "same"-style, so odd sizes round up).

Nothing is downloaded unless the caller asks for ``pretrained=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

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
        body = timm.create_model(name, pretrained=pretrained, features_only=True, out_indices=indices, **timm_kwargs)
    except (RuntimeError, IndexError, AssertionError) as err:
        raise ValueError(f"cannot build timm backbone {name!r} with out_indices={indices}: {err}") from err
    return TimmBackbone(body, name)
