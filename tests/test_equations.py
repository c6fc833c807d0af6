"""The registry's equations (synapses, plasticity rules, surrogates) printed to PyTorch and
to C give the same numbers, and the rule's equations are trace STDP as Morrison et al.
(2008) and Brian2 define it."""
from __future__ import annotations

import ctypes
import math

import numpy as np
import pytest
import torch

from snnc.ir import expr as ex
from snnc.passes.fold import fold
from snnc.printers import CPrinter, TorchPrinter
from snnc.registry import RULES, SURROGATES, SYNAPSES
from snnc.registry.core import REQUIRED
from snnc.runtime import native, ops
from snnc.templating import templates

POINTS = 64
# The C printing is checked by compiling it: only where a C compiler exists.
needs_cc = pytest.mark.skipif(native.c_compiler() is None, reason="no C compiler on this machine")


def _defaults(entry, **given) -> dict:
    values = {p.name: p.default for p in entry.params if p.default is not REQUIRED}
    return {**values, **given}


def _torch(assigns: list[ex.Assign], env: dict) -> dict:
    """Run assignments printed by TorchPrinter over tensors."""
    namespace = {"torch": torch, "rt": ops, **env}
    for a in assigns:
        namespace[a.target] = eval(TorchPrinter(like="x")(a.value), namespace)  # noqa: S307
    return namespace


def _c_library(functions: list[str]):
    # the kernels' own definitions of what CPrinter calls (comparisons, min, max, powers)
    prelude = templates().get_template("kernels/functions.h.j2").module.functions("static")
    source = "#include <math.h>\n#define real double\n" + prelude + "\n" + "\n".join(functions)
    lib = native.load(source, functions={}, what="a test's equations")
    assert lib is not None, "the printed C did not build"
    return lib.handle


def _c_function(name: str, inputs: list[str], assigns: list[ex.Assign], outputs: list[str]):
    """void name(int n, const double *in..., double *out...) running the assignments."""
    printer = CPrinter()
    args = ", ".join([f"const double *in_{v}" for v in inputs]
                     + [f"double *out_{v}" for v in outputs])
    declared = set(inputs) | {a.target for a in assigns}
    body = [f"real {v} = {'in_' + v + '[k]' if v in inputs else '0'};" for v in sorted(declared)]
    body += [f"{a.target} = {printer(a.value)};" for a in assigns]
    body += [f"out_{v}[k] = {v};" for v in outputs]
    return (f"void {name}(int n, {args}) {{ for (int k = 0; k < n; ++k) {{ "
            + " ".join(body) + " } }")


def _call_c(lib, name: str, inputs: dict[str, np.ndarray], outputs: list[str]) -> dict:
    fn = getattr(lib, name)
    result = {v: np.zeros(POINTS) for v in outputs}
    pointer = ctypes.POINTER(ctypes.c_double)
    fn(ctypes.c_int(POINTS), *[np.ascontiguousarray(a).ctypes.data_as(pointer)
                                for a in inputs.values()],
       *[result[v].ctypes.data_as(pointer) for v in outputs])
    return result


SYNAPSE_CASES = [("exp_current", {}), ("exp_decay_current", {"amplitude": 2.0}),
                 ("spike_current", {"amplitude": 0.5}), ("stp", {}),
                 ("filter", {"tau": 4.0}), ("filter", {"tau": 4.0, "learnable": True})]


@needs_cc
@pytest.mark.parametrize("kind, given", SYNAPSE_CASES)
def test_a_synapse_step_printed_to_c_and_to_pytorch_agrees(kind, given):
    entry = SYNAPSES[kind]
    params = _defaults(entry, **given)
    learnable = {n: fold(v, params) for n, v in entry.learnable} if params.get("learnable") \
        else {}
    update = [ex.Assign(a.target, fold(a.value, params)) for a in entry.update]
    output = fold(entry.output, params)
    states = [name for name, _ in entry.states]
    rng = np.random.default_rng(0)
    values = {"x": (rng.random(POINTS) < 0.4).astype(float),
              **{s: rng.random(POINTS) for s in states},
              **{n: np.full(POINTS, float(v.value) + 0.3) for n, v in learnable.items()}}
    assigns = [*update, ex.Assign("current", output)]
    outs = [*states, "current"]
    lib = _c_library([_c_function("step", list(values), assigns, outs)])
    in_c = _call_c(lib, "step", values, outs)
    in_torch = _torch(assigns, {k: torch.tensor(v) for k, v in values.items()})
    for name in outs:
        np.testing.assert_allclose(in_c[name], in_torch[name].numpy(), rtol=1e-13, atol=1e-15)


@needs_cc
@pytest.mark.parametrize("kind", sorted(SURROGATES))
def test_a_surrogate_derivative_printed_to_c_and_to_pytorch_agrees(kind):
    entry = SURROGATES[kind]
    params = _defaults(entry)
    assign = [*(ex.Assign(a.target, fold(a.value, params)) for a in entry.steps),
              ex.Assign("g", fold(entry.derivative, params))]
    h = np.linspace(-3, 3, POINTS)
    lib = _c_library([_c_function("grad", ["h"], assign, ["g"])])
    in_c = _call_c(lib, "grad", {"h": h}, ["g"])["g"]
    in_torch = _torch(assign, {"h": torch.tensor(h), "x": torch.tensor(h)})["g"]
    np.testing.assert_allclose(in_c, torch.as_tensor(in_torch).numpy(), rtol=1e-13, atol=1e-15)


# ------------------------------------------------------------------ STDP
def _stdp_by_registry(rule, params, pre, post, w):
    """Run the rule's equations: `decay` every step, then `on_pre` where the source spiked
    and `on_post` where the target spiked (w is [post, pre])."""
    env = {k: v for k, v in params.items() if k != "f_w"}
    env["multiplicative"] = float(params["f_w"] == "multiplicative")
    decay, on_pre, on_post = ([ex.Assign(a.target, fold(a.value, env)) for a in part]
                              for part in (rule.decay, rule.on_pre, rule.on_post))
    traces = {"x_pre": torch.zeros(pre.shape[1], dtype=torch.float64),
              "x_post": torch.zeros(post.shape[1], dtype=torch.float64)}
    for s_pre, s_post in zip(pre, post, strict=True):
        decayed = _torch(decay, {**traces, "x": w})
        traces = {name: decayed[name] for name in traces}
        w = _pathway(on_pre, "x_pre", s_pre > 0, traces, w)
        w = _pathway(on_post, "x_post", s_post > 0, traces, w)
    return w


def _pathway(assigns, side: str, fired, traces: dict, w):
    """One side's spikes: its trace jumps where it fired, then each synapse of a neuron
    that fired changes."""
    jump, change = assigns
    traces[side] = torch.where(fired, _torch([jump], {**traces, "x": w})[side], traces[side])
    per_synapse = {"w": w, "x": w, "x_pre": traces["x_pre"][None, :].expand_as(w),
                   "x_post": traces["x_post"][:, None].expand_as(w)}
    changed = _torch([change], per_synapse)["w"]
    rows = fired[None, :] if side == "x_pre" else fired[:, None]
    return torch.where(rows.expand_as(w), changed, w)


def _stdp_by_hand(p, pre, post, w):
    """Brian2's trace STDP, pre pathway first: on a pre spike apre += 1, w += a_post apost;
    on a post spike apost += 1, w += a_pre apre; clipped to [w_min, w_max]."""
    apre, apost, w = np.zeros(pre.shape[1]), np.zeros(post.shape[1]), w.numpy().copy()
    soft = p["f_w"] == "multiplicative"
    for s_pre, s_post in zip(pre.numpy(), post.numpy(), strict=True):
        apre *= math.exp(-1 / p["tau_pre"])
        apost *= math.exp(-1 / p["tau_post"])
        for j in np.flatnonzero(s_pre):
            apre[j] += 1
            change = p["a_post"] * apost
            room = (w[:, j] - p["w_min"]) if p["a_post"] < 0 else (p["w_max"] - w[:, j])
            w[:, j] = np.clip(w[:, j] + (change * room if soft else change), p["w_min"],
                              p["w_max"])
        for i in np.flatnonzero(s_post):
            apost[i] += 1
            change = p["a_pre"] * apre
            room = (w[i] - p["w_min"]) if p["a_pre"] < 0 else (p["w_max"] - w[i])
            w[i] = np.clip(w[i] + (change * room if soft else change), p["w_min"], p["w_max"])
    return w


@pytest.mark.parametrize("f_w, a_pre, a_post", [("additive", 0.05, -0.06),
                                                 ("multiplicative", 0.05, -0.06),
                                                 ("additive", -0.04, 0.03)])  # anti-STDP
def test_the_stdp_rule_is_brian2s_trace_stdp(f_w, a_pre, a_post):
    rule = RULES["stdp"]
    params = {**_defaults(rule), "tau_pre": 5.0, "tau_post": 8.0, "a_pre": a_pre,
              "a_post": a_post, "f_w": f_w}
    g = torch.Generator().manual_seed(3)
    pre = (torch.rand(60, 4, generator=g, dtype=torch.float64) < 0.3).double()
    post = (torch.rand(60, 3, generator=g, dtype=torch.float64) < 0.3).double()
    w = torch.rand(3, 4, generator=g, dtype=torch.float64)
    expected = _stdp_by_hand(params, pre, post, w)
    got = _stdp_by_registry(rule, params, pre, post, w)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-14)
    assert not np.allclose(expected, w.numpy())  # the weights did change
