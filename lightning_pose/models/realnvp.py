"""Two-dimensional RealNVP flow used by Residual Log-likelihood Estimation (RLE, Li et al. ICCV21).

The flow models the density of a *normalised residual* ``eps = (mu - y) / sigma`` (dimensionless, one 2-D vector per
joint). It is a stack of 6 affine coupling layers with binary masks ``[0, 1], [1, 0]`` repeated three times; the
masked coordinate passes through unchanged and parameterises a scale ``s`` (``tanh``-bounded) and a shift ``t`` of
the other coordinate. The base density is the standard normal ``N(0, I)``.

Directions (dinh et al. naming):
    ``forward_p(z)``  base -> data   (sampling): ``x = z * exp(s(z_masked)) + t(z_masked)`` on the free coordinate.
    ``backward_p(x)`` data -> base   (density):  ``z = (x - t) * exp(-s)``; returns ``(z, log|det dz/dx|)``.
    ``log_prob(x) = log N(z; 0, I) + log|det dz/dx|``.

Initialisation: all ``Linear`` weights xavier-uniform with gain 0.01 (biases keep PyTorch's default), so at
initialisation the flow is close to -- but not exactly -- the identity and ``log_prob`` is close to the standard
normal log-density.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["RealNVP"]

_LOG_2PI = math.log(2.0 * math.pi)


def _scale_net() -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(2, 64), nn.LeakyReLU(), nn.Linear(64, 64), nn.LeakyReLU(), nn.Linear(64, 2), nn.Tanh()
    )


def _shift_net() -> nn.Sequential:
    return nn.Sequential(nn.Linear(2, 64), nn.LeakyReLU(), nn.Linear(64, 64), nn.LeakyReLU(), nn.Linear(64, 2))


class RealNVP(nn.Module):
    """2-D RealNVP density (6 coupling layers, standard-normal prior). Inputs are ``(N, 2)`` tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mask", torch.tensor([[0.0, 1.0], [1.0, 0.0]] * 3))
        self.s = nn.ModuleList([_scale_net() for _ in range(len(self.mask))])
        self.t = nn.ModuleList([_shift_net() for _ in range(len(self.mask))])
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """xavier-uniform (gain 0.01) on every Linear weight; biases get PyTorch's default uniform init."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight, gain=0.01)
                fan_in = m.weight.shape[1]
                bound = 1.0 / math.sqrt(fan_in)
                nn.init.uniform_(m.bias, -bound, bound)

    @staticmethod
    def _check(x: Tensor, what: str) -> None:
        if x.dim() != 2 or x.shape[1] != 2:
            raise ValueError(f"RealNVP.{what}: expected a (N, 2) tensor, got shape {tuple(x.shape)}")

    def forward_p(self, z: Tensor) -> Tensor:
        """Map base samples ``z`` (N, 2) to data space ``x`` (N, 2) (coupling layers in order 0..5)."""
        self._check(z, "forward_p")
        x = z
        for mask, s_net, t_net in zip(self.mask, self.s, self.t):
            x_fixed = x * mask
            s = s_net(x_fixed) * (1 - mask)
            t = t_net(x_fixed) * (1 - mask)
            x = x_fixed + (1 - mask) * (x * torch.exp(s) + t)
        return x

    def backward_p(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Map data ``x`` (N, 2) to the base space; returns ``(z (N, 2), log|det dz/dx| (N,))``."""
        self._check(x, "backward_p")
        z = x
        log_det = x.new_zeros(x.shape[0])
        for i in reversed(range(len(self.mask))):
            mask = self.mask[i]
            z_fixed = z * mask
            s = self.s[i](z_fixed) * (1 - mask)
            t = self.t[i](z_fixed) * (1 - mask)
            z = z_fixed + (1 - mask) * (z - t) * torch.exp(-s)
            log_det = log_det - s.sum(dim=1)
        return z, log_det

    def log_prob(self, x: Tensor) -> Tensor:
        """Natural-log density of ``x`` (N, 2) under the flow; returns (N,)."""
        z, log_det = self.backward_p(x)
        base = -0.5 * (z * z).sum(dim=1) - _LOG_2PI  # log N(z; 0, I_2) = -|z|^2/2 - log(2 pi)
        return base + log_det

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` samples (n, 2) from the flow density."""
        z = torch.randn(n, 2, generator=generator, device=self.mask.device, dtype=self.mask.dtype)
        return self.forward_p(z)
