"""The network-factory contract: class, partial, jsonargparse factory and stored mapping build the same network."""

from __future__ import annotations

import functools

import pytest
import torch
from jsonargparse import ArgumentParser

from lightning_pose.errors import ConfigError
from lightning_pose.models.simple_baseline import SimpleBaseline
from lightning_pose.tasks.network import NetworkFactory, build_network, describe_network, network_name

SPEC = {
    "class_path": "lightning_pose.models.simple_baseline.SimpleBaseline",
    "init_args": {"backbone": "resnet18", "deconv_channels": [32, 32]},
}


def _jsonargparse_factory():
    class Holder:
        def __init__(self, network: NetworkFactory) -> None:
            self.network = network

    p = ArgumentParser()
    p.add_class_arguments(Holder, "m")
    cfg = p.parse_object({"m": {"network": SPEC}})
    return p.instantiate(cfg).m.network


@pytest.mark.parametrize(
    "make",
    [
        lambda: SPEC,
        lambda: functools.partial(SimpleBaseline, backbone="resnet18", deconv_channels=(32, 32)),
        _jsonargparse_factory,
    ],
)
def test_every_form_builds_the_same_network(make):
    spec = make()
    net = build_network(spec, 5)
    assert isinstance(net, SimpleBaseline)
    out = net(torch.zeros(1, 3, 64, 48))
    assert out[-1].shape == (1, 5, 64 // 8, 48 // 8)
    desc = describe_network(spec)
    assert desc["class_path"].endswith("SimpleBaseline")
    assert desc["init_args"]["backbone"] == "resnet18"
    assert list(desc["init_args"]["deconv_channels"]) == [32, 32]
    rebuilt = build_network(desc, 5)  # what a checkpoint stores rebuilds the same shapes
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in net.state_dict().items()}
    assert network_name(spec) == "SimpleBaseline"


def test_errors_are_one_line():
    with pytest.raises(ConfigError, match="cannot be imported"):
        build_network({"class_path": "no.such.Net"}, 3)
    with pytest.raises(ConfigError, match="needs a 'class_path'"):
        build_network({"init_args": {}}, 3)
    with pytest.raises(ConfigError, match="not a torch.nn.Module"):
        build_network(lambda k: k, 3)
    desc = describe_network(lambda k: torch.nn.Conv2d(3, k, 1))
    assert desc["rebuildable"] is False
    with pytest.raises(ConfigError, match="cannot be rebuilt"):
        build_network(desc, 3)
