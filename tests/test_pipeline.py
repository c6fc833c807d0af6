"""snnc.pipeline.ModelPipeline: the schedule, and results and gradients equal to the
stages called one after the other, on CPU devices (and on GPUs where there are some)."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from conftest import net
from snnc.compiler import compile as snnc_compile
from snnc.pipeline import ModelPipeline, as_device

B, D = 8, 4


def mlp_stages(seed: int = 0) -> list[nn.Module]:
    torch.manual_seed(seed)
    return [nn.Sequential(nn.Linear(D, 6), nn.Tanh()),
            nn.Sequential(nn.Linear(6, 5), nn.ReLU()),
            nn.Linear(5, 3)]


def pipeline_of(stages, devices=None, copies: bool = True) -> ModelPipeline:
    pipe = ModelPipeline()
    for k, stage in enumerate(stages):
        pipe.append(copy.deepcopy(stage) if copies else stage,
                    (devices or ["cpu"] * len(stages))[k])
    return pipe


def grads(module: nn.Module) -> list[torch.Tensor]:
    return [p.grad.detach().cpu().clone() for p in module.parameters()]


@pytest.mark.parametrize("split", [1, 2, 3, 5, 7, 8, 100, [3, 4, 1], [8], [1, 1, 6]])
def test_forward_and_backward_equal_sequential(split):
    stages = mlp_stages()
    reference = nn.Sequential(*copy.deepcopy(stages))
    pipe = pipeline_of(stages)
    torch.manual_seed(1)
    x = torch.randn(B, D, dtype=torch.float32)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    weights = torch.randn(B, 3)

    expected = reference(x1)
    got = pipe(x2, split)
    torch.testing.assert_close(got, expected)
    (expected * weights).sum().backward()
    (got * weights).sum().backward()
    torch.testing.assert_close(x2.grad, x1.grad)
    for g, e in zip(grads(pipe), grads(reference), strict=True):
        torch.testing.assert_close(g, e)


def test_split_along_another_dimension():
    """dim=1: snnc's [T, B, ...] inputs cut along the batch."""
    stages = mlp_stages(3)
    reference = nn.Sequential(*copy.deepcopy(stages))
    pipe = pipeline_of(stages)
    x = torch.randn(5, B, D)
    torch.testing.assert_close(pipe(x, 3, dim=1), reference(x))


class Log(nn.Module):
    """Records (stage, micro-batch) as it runs; micro-batch i is a batch of value i."""

    def __init__(self, k: int, log: list):
        super().__init__()
        self.k, self.log = k, log

    def forward(self, x):
        self.log.append((self.k, int(x[0, 0].item())))
        return x


def test_schedule_is_a_pipeline():
    """At tick s stage k works on micro-batch s - k: stage k on i while k + 1 on i - 1."""
    log: list = []
    pipe = pipeline_of([Log(k, log) for k in range(4)], copies=False)
    expected = [[(0, 0)],
                [(1, 0), (0, 1)],
                [(2, 0), (1, 1), (0, 2)],
                [(3, 0), (2, 1), (1, 2)],
                [(3, 1), (2, 2)],
                [(3, 2)]]
    assert pipe.schedule(3) == expected
    x = torch.arange(3.0).repeat_interleave(2).unsqueeze(1)   # micro-batches of 0, 1, 2
    out = pipe(x, 2)
    assert log == [pair for tick in expected for pair in tick]
    torch.testing.assert_close(out, x)
    log.clear()
    pipe.constant_forward(torch.zeros(1, 1), 3)
    assert [k for k, _ in log] == [k for tick in expected for k, _ in tick]


class Leaky(nn.Module):
    """A state carried across calls, as an snnc population's: v = v / 2 + x."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(1.5))
        self.v = None

    def reset(self):
        self.v = None

    def forward(self, x):
        self.v = x if self.v is None else self.v * 0.5 + x
        return torch.tanh(self.v * self.scale)


@pytest.fixture
def snnc_net(tmp_path):
    """An snnc softbp network of two LIF populations, [1, B, 5] currents -> [1, B, 3] spikes;
    its membrane potentials carry from one call to the next."""
    path = tmp_path / "two.snn"
    path.write_text(net("steps = 1\ninput i[5]\npopulation h[6] = LIF(tau = 2.0)\n"
                        "population o[3] = LIF(tau = 2.0)\n"
                        "connect i -> h : dense\nconnect h -> o : dense", "two"))
    torch.manual_seed(4)
    network = snnc_compile(path)()
    with torch.no_grad():   # excitatory weights, so that both populations spike
        for weight in network.connections.parameters():
            weight.abs_().mul_(1.5)
    return network


def stateful_stages(snnc_net) -> list[nn.Module]:
    torch.manual_seed(5)
    encoder = nn.Linear(D, 5)
    with torch.no_grad():
        encoder.weight.abs_()      # currents strong enough that the populations spike
        encoder.bias.fill_(0.5)
    return [encoder, snnc_net, nn.Sequential(nn.Linear(3, 3), Leaky()), Leaky()]


@pytest.mark.parametrize("T", [1, 2, 7])
def test_constant_forward_equals_T_sequential_calls(snnc_net, T):
    stages = stateful_stages(snnc_net)
    reference = nn.Sequential(*copy.deepcopy(stages))
    pipe = pipeline_of(stages)
    torch.manual_seed(6)
    x = torch.rand(1, B, D) * 4
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()

    calls = [reference(x1) for _ in range(T)]
    expected = torch.stack(calls).sum(0)
    got = pipe.constant_forward(x2, T)
    torch.testing.assert_close(got, expected)
    weights = torch.rand_like(got)
    (expected * weights).sum().backward()
    (got * weights).sum().backward()
    torch.testing.assert_close(x2.grad, x1.grad)
    for g, e in zip(grads(pipe), grads(reference), strict=True):
        torch.testing.assert_close(g, e)
    # the states go on from where T calls left them, in both
    assert [n for n, _ in pipe.module_list[1].named_memories()] == ["populations.h.v",
                                                                    "populations.o.v"]
    for (_, a), (_, b) in zip(pipe.module_list[1].named_memories(),
                              reference[1].named_memories(), strict=True):
        torch.testing.assert_close(a, b)


def test_constant_forward_reduce(snnc_net):
    stages = stateful_stages(snnc_net)
    x = torch.rand(1, B, D) * 4
    reference = nn.Sequential(*copy.deepcopy(stages))
    calls = torch.stack([reference(x) for _ in range(5)]).detach()
    outs = {}
    for reduce in (False, True, "mean", "sum"):
        with torch.no_grad():
            outs[reduce] = pipeline_of(stages).constant_forward(x, 5, reduce=reduce)
    torch.testing.assert_close(outs[False], calls)
    assert not torch.equal(calls[0], calls[1])   # the states matter
    spikes = []
    pipe = pipeline_of(stages)
    pipe.module_list[1].register_forward_hook(lambda m, i, o: spikes.append(o.sum().item()))
    with torch.no_grad():
        pipe.constant_forward(x, 5)
    assert sum(spikes) > 0 and len(set(spikes)) > 1   # the populations spike, not always alike
    torch.testing.assert_close(outs[True], calls.sum(0))  # SpikingFlow's reduce=True
    torch.testing.assert_close(outs["mean"], calls.mean(0))
    torch.testing.assert_close(outs["sum"], calls.sum(0))
    assert outs[False].shape == (5, 1, B, 3)


def test_constant_forward_reset_starts_again(snnc_net):
    """After resetting the stages, a second run gives the first run's outputs."""
    pipe = pipeline_of(stateful_stages(snnc_net))
    x = torch.rand(1, B, D) * 4
    with torch.no_grad():
        first = pipe.constant_forward(x, 4, reduce=False)
        carried_on = pipe.constant_forward(x, 4, reduce=False)
        for module in pipe.modules():
            if module is not pipe and hasattr(module, "reset"):
                module.reset()
        again = pipe.constant_forward(x, 4, reduce=False)
    torch.testing.assert_close(again, first)
    assert not torch.equal(carried_on, first)


class Where(nn.Module):
    """Records the device of its input, its parameters and its output."""

    def __init__(self, log: list):
        super().__init__()
        self.lin = nn.Linear(D, D)
        self.log = log

    def forward(self, x):
        y = self.lin(x)
        self.log.append((x.device, self.lin.weight.device, y.device))
        return y


@pytest.mark.parametrize("devices", [["cpu", "cpu", "cpu"], ["cpu", "meta", "meta"],
                                     ["meta", "meta", "meta"]])
def test_stage_devices(devices):
    """Each stage's parameters, input and output live on its device (meta stands for a
    second device on a machine without GPUs); the result is on the last stage's device."""
    log: list = []
    pipe = pipeline_of([Where(log) for _ in devices], devices, copies=False)
    assert pipe.devices == [torch.device(d) for d in devices]
    for stage, device in zip(pipe.module_list, devices, strict=True):
        assert all(p.device == torch.device(device) for p in stage.parameters())
    out = pipe(torch.randn(B, D), 3)
    assert out.device == torch.device(devices[-1]) and out.shape == (B, D)
    assert len(log) == 3 * len(devices)
    order = [k for tick in pipe.schedule(3) for k, _ in tick]
    for k, (x_dev, w_dev, y_dev) in zip(order, log, strict=True):
        assert x_dev == w_dev == y_dev == torch.device(devices[k])
    out = pipe.constant_forward(torch.randn(B, D), 2)
    assert out.device == torch.device(devices[-1])


def test_devices_as_in_spikingflow():
    assert as_device("2") == torch.device("cuda", 2)
    assert as_device(1) == torch.device("cuda", 1)
    assert as_device("cpu") == torch.device("cpu")
    assert as_device("cuda:3") == torch.device("cuda", 3)
    assert as_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(TypeError):
        as_device(None)
    with pytest.raises(TypeError):
        ModelPipeline().append(lambda x: x, "cpu")


def test_constructor_takes_stages_and_subclassing_works():
    stages = mlp_stages(7)

    class Net(ModelPipeline):
        def __init__(self):
            super().__init__()
            for stage in copy.deepcopy(stages):
                self.append(stage, "cpu")

        def forward(self, x, T):   # as the seed's cifar10cmp example
            return self.constant_forward(x, T, True)

    x = torch.randn(B, D)
    reference = nn.Sequential(*copy.deepcopy(stages))
    direct = ModelPipeline([(copy.deepcopy(s), "cpu") for s in stages])
    torch.testing.assert_close(Net()(x, 3), 3 * reference(x))  # the sum of 3 calls
    torch.testing.assert_close(direct(x, 3), reference(x))
    assert len(direct) == 3 and "cpu" in repr(direct)
    # the stages are registered: state_dict, parameters and .train()/.eval() reach them
    assert len(list(direct.parameters())) == 6
    assert set(direct.state_dict()) == {f"module_list.{k}.{n}" for k, n in
                                        [(0, "0.weight"), (0, "0.bias"), (1, "0.weight"),
                                         (1, "0.bias"), (2, "weight"), (2, "bias")]}


@pytest.mark.parametrize("split", [0, -2, [3, 4], [8, 1], [], [0, 8], [4, -1, 5], 2.5,
                                   [2.0, 6], True, "4", None])
def test_bad_split_sizes_raise(split):
    pipe = pipeline_of(mlp_stages())
    with pytest.raises(ValueError):
        pipe(torch.randn(B, D), split)


def test_bad_arguments_raise():
    pipe = pipeline_of(mlp_stages())
    x = torch.randn(B, D)
    for T in (0, -1, 2.0, True):
        with pytest.raises(ValueError):
            pipe.constant_forward(x, T)
    with pytest.raises(ValueError):
        pipe.constant_forward(x, 2, reduce="max")
    with pytest.raises(ValueError):
        pipe(torch.randn(0, D), 2)
    with pytest.raises(ValueError):
        pipe(torch.tensor(1.0), 1)
    with pytest.raises(ValueError):
        ModelPipeline()(x, 2)
    with pytest.raises(ValueError):
        ModelPipeline().constant_forward(x, 2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_on_gpus_equals_cpu(snnc_net):
    """Stages spread over the GPUs there are (and the host) give the CPU results."""
    gpus = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    devices = [gpus[0], "cpu", gpus[-1], gpus[0]]
    stages = stateful_stages(snnc_net)
    reference = nn.Sequential(*copy.deepcopy(stages))
    pipe = pipeline_of(stages, devices)
    x = torch.rand(1, B, D) * 4
    with torch.no_grad():
        expected = torch.stack([reference(x) for _ in range(6)]).mean(0)
        got = pipe.constant_forward(x, 6)
    assert got.device == torch.device(gpus[0])
    torch.testing.assert_close(got.cpu(), expected, atol=1e-5, rtol=1e-5)
    mlp = mlp_stages()
    ref = nn.Sequential(*copy.deepcopy(mlp))
    pipe = pipeline_of(mlp, [gpus[0], "cpu", gpus[-1]])
    xb = torch.randn(B, D)
    torch.testing.assert_close(pipe(xb, 3).cpu(), ref(xb), atol=1e-5, rtol=1e-5)
