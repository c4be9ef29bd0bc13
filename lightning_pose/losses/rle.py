"""Residual Log-likelihood Estimation loss (Li et al., ICCV21), in mmpose's ``RLELoss`` form.

For each joint with predicted mean ``mu`` (B, K, 2), scale ``sigma`` (B, K, 2) in (0, 1) and target ``y`` (B, K, 2),
all in normalised input-frame units ``(x / W_in, y / H_in)``:

    eps     = (mu - y) / (sigma + 1e-9)                      # dimensionless residual, (B, K, 2)
    log_phi = flow.log_prob(eps)                             # RealNVP density of eps, (B, K, 1)
    nf      = log(sigma) - log_phi                           # broadcast over the 2 coordinates (mmpose form:
                                                             #   log_phi is subtracted once per coordinate)
    q       = log(2 sigma) + |eps|      ("laplace")  or  log(sqrt(2 pi) sigma) + eps^2 / 2   ("gaussian")
    loss    = sum_{b,k,d} (nf + q) * weight[b, k] / B        # residual=True (the default, as in the paper)

``sigma`` must already be a probability-like scale in (0, 1) -- :class:`DeepPoseRegressor` applies the sigmoid, so
unlike mmpose's ``RLELoss`` this class does **not** apply it again. The flow is trainable and belongs to the loss
(its parameters must be given to the optimiser together with the network's).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lightning_pose.losses._checks import check_pred_target_weight
from lightning_pose.models.realnvp import RealNVP

__all__ = ["RLELoss"]


class RLELoss(nn.Module):
    """RLE negative log-likelihood with a trainable 2-D RealNVP flow.

    Args:
        residual: add the residual ``q`` term (RLE's "residual log-likelihood"); False = flow NLL only.
        q_distribution: ``"laplace"`` (default, mmpose/paper) or ``"gaussian"``.
        size_average: divide the summed loss by the batch size B (mmpose ``size_average=True``); else plain sum.
    """

    def __init__(self, residual: bool = True, q_distribution: str = "laplace", size_average: bool = True) -> None:
        super().__init__()
        if q_distribution not in ("laplace", "gaussian"):
            raise ValueError(f"RLELoss: q_distribution must be 'laplace' or 'gaussian', got {q_distribution!r}")
        self.residual = residual
        self.q_distribution = q_distribution
        self.size_average = size_average
        self.flow = RealNVP()

    def forward(self, mu: Tensor, sigma: Tensor, target: Tensor, weight: Tensor | None) -> Tensor:
        """Scalar loss; see the module docstring. ``mu, sigma, target``: (B, K, 2); ``weight``: (B, K) or None."""
        check_pred_target_weight("RLELoss", mu, target, weight, 3)
        if sigma.shape != mu.shape or mu.shape[-1] != 2:
            raise ValueError(f"RLELoss: mu {tuple(mu.shape)} and sigma {tuple(sigma.shape)} must both be (B, K, 2)")
        b, k, _ = mu.shape
        eps = (mu - target) / (sigma + 1e-9)
        log_phi = self.flow.log_prob(eps.reshape(-1, 2)).reshape(b, k, 1)
        loss = torch.log(sigma) - log_phi
        if self.residual:
            if self.q_distribution == "laplace":
                loss = loss + torch.log(2 * sigma) + eps.abs()
            else:
                loss = loss + torch.log(math.sqrt(2 * math.pi) * sigma) + 0.5 * eps.pow(2)
        if weight is not None:
            loss = loss * weight.to(loss.dtype).unsqueeze(-1)
        total = loss.sum()
        return total / b if self.size_average else total
