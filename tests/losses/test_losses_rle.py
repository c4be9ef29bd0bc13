"""RLE loss and its RealNVP flow: hand-computed values, an independent flow re-implementation, and learning sigma."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lightning_pose.losses import RLELoss
from lightning_pose.models.realnvp import RealNVP


def _make_identity(flow: RealNVP) -> None:
    """Zero the last Linear of every s/t net: s = t = 0, so the flow is exactly the identity."""
    for net in list(flow.s) + list(flow.t):
        last = [m for m in net if isinstance(m, nn.Linear)][-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)


def _mlp(net: nn.Sequential, x: torch.Tensor, tanh: bool) -> torch.Tensor:
    l1, l2, l3 = [m for m in net if isinstance(m, nn.Linear)]
    h = torch.nn.functional.leaky_relu(x @ l1.weight.T + l1.bias, 0.01)
    h = torch.nn.functional.leaky_relu(h @ l2.weight.T + l2.bias, 0.01)
    out = h @ l3.weight.T + l3.bias
    return torch.tanh(out) if tanh else out


def _reference_log_prob(flow: RealNVP, x: torch.Tensor) -> torch.Tensor:
    """Independent inverse pass written per coordinate (layer i with mask [0,1] keeps y, transforms x)."""
    z = x.clone()
    log_det = torch.zeros(x.shape[0], dtype=x.dtype)
    for i in reversed(range(6)):
        keep = 1 if i % 2 == 0 else 0  # masks alternate [0,1], [1,0]: index of the unchanged coordinate
        free = 1 - keep
        inp = torch.zeros_like(z)
        inp[:, keep] = z[:, keep]
        s = _mlp(flow.s[i], inp, tanh=True)[:, free]
        t = _mlp(flow.t[i], inp, tanh=False)[:, free]
        z[:, free] = (z[:, free] - t) * torch.exp(-s)
        log_det = log_det - s
    return -0.5 * (z**2).sum(1) - math.log(2 * math.pi) + log_det


def test_flow_masks_and_architecture() -> None:
    flow = RealNVP()
    torch.testing.assert_close(flow.mask, torch.tensor([[0.0, 1.0], [1.0, 0.0]] * 3))
    assert len(flow.s) == len(flow.t) == 6
    assert isinstance(flow.s[0][-1], nn.Tanh) and not isinstance(flow.t[0][-1], nn.Tanh)
    assert [m.out_features for m in flow.s[0] if isinstance(m, nn.Linear)] == [64, 64, 2]


def test_identity_flow_is_standard_normal() -> None:
    flow = RealNVP()
    _make_identity(flow)
    x = torch.tensor([[0.0, 0.0], [1.0, -2.0]])
    expected = torch.tensor([-math.log(2 * math.pi), -2.5 - math.log(2 * math.pi)])
    torch.testing.assert_close(flow.log_prob(x), expected)


def test_default_init_is_close_to_standard_normal() -> None:
    torch.manual_seed(0)
    flow = RealNVP()
    x = torch.randn(256, 2)
    std_normal = -0.5 * (x**2).sum(1) - math.log(2 * math.pi)
    diff = (flow.log_prob(x) - std_normal).abs()
    assert diff.mean().item() < 0.2  # only the default-initialised biases (|b| <= 1/8) move it


def test_log_prob_matches_independent_implementation_and_jacobian() -> None:
    torch.manual_seed(1)
    flow = RealNVP()
    for m in flow.modules():  # make the flow far from identity
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.5)
    x = torch.randn(16, 2, dtype=torch.float64)
    flow = flow.double()
    torch.testing.assert_close(flow.log_prob(x), _reference_log_prob(flow, x))
    # change of variables: log|det dz/dx| from autograd equals the flow's log-det; forward_p inverts backward_p
    z, log_det = flow.backward_p(x)
    for n in range(3):
        jac = torch.autograd.functional.jacobian(lambda v: flow.backward_p(v[None])[0][0], x[n])
        assert torch.logdet(jac).item() == pytest.approx(log_det[n].item(), abs=1e-9)
    torch.testing.assert_close(flow.forward_p(z), x)


def test_rle_loss_hand_computed_with_identity_flow() -> None:
    loss_fn = RLELoss()
    _make_identity(loss_fn.flow)
    # sample 0: mu - y = (0.1, -0.2), sigma = (0.1, 0.2) -> eps = (1, -1); sample 1 has weight 0.
    mu = torch.tensor([[[0.6, 0.3]], [[0.9, 0.9]]])
    target = torch.tensor([[[0.5, 0.5]], [[0.1, 0.1]]])
    sigma = torch.tensor([[[0.1, 0.2]], [[0.3, 0.3]]])
    w = torch.tensor([[1.0], [0.0]])
    log_phi = -0.5 * (1 + 1) - math.log(2 * math.pi)
    per_coord = [math.log(s) - log_phi + math.log(2 * s) + 1.0 for s in (0.1, 0.2)]
    assert loss_fn(mu, sigma, target, w).item() == pytest.approx(sum(per_coord) / 2, rel=1e-5)  # sum / B
    no_avg = RLELoss(size_average=False)
    no_avg.flow.load_state_dict(loss_fn.flow.state_dict())
    assert no_avg(mu, sigma, target, w).item() == pytest.approx(sum(per_coord), rel=1e-5)
    gauss = RLELoss(q_distribution="gaussian")
    gauss.flow.load_state_dict(loss_fn.flow.state_dict())
    per_coord_g = [math.log(s) - log_phi + math.log(math.sqrt(2 * math.pi) * s) + 0.5 for s in (0.1, 0.2)]
    assert gauss(mu, sigma, target, w).item() == pytest.approx(sum(per_coord_g) / 2, rel=1e-5)


def test_rle_loss_errors() -> None:
    with pytest.raises(ValueError, match="q_distribution"):
        RLELoss(q_distribution="cauchy")
    with pytest.raises(ValueError, match="sigma"):
        RLELoss()(torch.zeros(1, 2, 2), torch.ones(1, 2, 1), torch.zeros(1, 2, 2), None)


def _fit_sigma(loss_fn: RLELoss, true_std: torch.Tensor, train_flow: bool, steps: int = 200) -> torch.Tensor:
    """Learn one sigma per (joint, coordinate) for Gaussian residuals of std ``true_std`` (K,); returns sigma (K, 2)."""
    torch.manual_seed(0)
    k = true_std.shape[0]
    sigma_logit = torch.zeros(k, 2, requires_grad=True)  # sigma starts at 0.5
    params = [sigma_logit, *loss_fn.parameters()] if train_flow else [sigma_logit]
    opt = torch.optim.Adam(params, lr=4e-2)
    for _ in range(steps):
        target = torch.rand(64, k, 2)
        mu = target + torch.randn(64, k, 2) * true_std[None, :, None]
        loss = loss_fn(mu, sigma_logit.sigmoid().expand(64, k, 2), target, torch.ones(64, k))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return sigma_logit.sigmoid().detach()


def test_minimising_rle_with_fixed_flow_reaches_the_analytic_sigma() -> None:
    """Identity flow, Gaussian residuals of std s. Per joint the expected loss is (mmpose form, log_phi counted
    once per coordinate) 4 log(sigma) + A / sigma + B / sigma^2 + const with A = E(|e_x| + |e_y|) = 2 s sqrt(2/pi)
    and B = E|e|^2 = 2 s^2, minimised at sigma* = (A + sqrt(A^2 + 32 B)) / 8 = 1.2192 s."""
    torch.set_num_threads(1)
    loss_fn = RLELoss()
    _make_identity(loss_fn.flow)
    true_std = torch.tensor([0.02, 0.08])
    sigma = _fit_sigma(loss_fn, true_std, train_flow=False)
    a, b = 2 * true_std * math.sqrt(2 / math.pi), 2 * true_std**2
    optimum = (a + torch.sqrt(a**2 + 32 * b)) / 8
    assert optimum[0].item() == pytest.approx(1.2192 * 0.02, rel=1e-3)
    torch.testing.assert_close(sigma, optimum[:, None].expand(2, 2), rtol=0.1, atol=0.0)


def test_minimising_rle_with_trained_flow_keeps_sigma_ordered_by_error() -> None:
    """With the flow trained too, sigma and the flow's own scale trade off (in the mmpose form the sigma terms
    cancel against a perfectly fitted flow; only the flow's tanh-bounded scales stop the drift), so sigma is not
    pinned to E|e| -- but it still ranks joints by their error scale (std ratio 4)."""
    torch.set_num_threads(1)
    sigma = _fit_sigma(RLELoss(), torch.tensor([0.02, 0.08]), train_flow=True)
    assert (sigma[1] > 2.0 * sigma[0]).all(), sigma
