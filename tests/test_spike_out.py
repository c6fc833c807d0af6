"""snngrow's spike_out on generated softbp modules: spikes kept in one byte each."""
from __future__ import annotations

import pytest
import torch

import snnc

NET = """network a {
    steps = 8
    input x[5]
    population h[6] = LIF(tau = 2.0)
    population o[3] = LIF(tau = 2.0)
    connect x -> h : dense
    connect h -> o : dense
    monitor h.spikes, h.v
}
"""


@pytest.fixture
def net(tmp_path):
    (tmp_path / "a.snn").write_text(NET)
    torch.manual_seed(0)
    return snnc.compile(tmp_path / "a.snn")()


@pytest.mark.parametrize("dtype", [torch.bool, torch.uint8])
def test_monitors_and_outputs_in_one_byte_hold_the_same_spikes(net, dtype):
    x = torch.rand(8, 4, 5) * 3
    plain = net(x)
    hidden = net.monitors["h.spikes"]
    net.reset()
    net.spike_out = dtype
    with torch.no_grad():
        small = net(x)
    assert small.dtype == dtype and net.monitors["h.spikes"].dtype == dtype
    assert torch.equal(small.to(plain.dtype), plain.detach())
    assert torch.equal(net.monitors["h.spikes"].to(hidden.dtype), hidden.detach())
    assert net.monitors["h.v"].dtype == torch.float32  # states stay as they are
    assert small.element_size() == 1


def test_spikes_a_gradient_flows_through_stay_float(net):
    net.spike_out = torch.bool
    out = net(torch.rand(8, 4, 5) * 3)
    assert out.dtype == torch.float32 and out.requires_grad
    assert net.monitors["h.spikes"].dtype == torch.bool  # a recording: detached
    out.sum().backward()
    assert net.connection("x->h").ops[0].weight.grad is not None


def test_other_dtypes_are_refused(net):
    net.spike_out = torch.float16
    with torch.no_grad(), pytest.raises(ValueError, match="torch.bool or torch.uint8"):
        net(torch.rand(8, 1, 5))
