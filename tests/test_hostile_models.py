"""Neuron models as an attacker or a careless user writes them (issue 8, classes 3 to 6):
every expression the language accepts builds or is refused with its position, building
stays fast and small however the equations nest or reuse each other, and the fused
kernels agree with the reference step on every model that builds, randomly generated
ones included."""
from __future__ import annotations

import math
import random
import re
import shutil
import time
from dataclasses import dataclass

import pytest
import torch

from snnc.compiler import compile as snnc_compile
from snnc.compiler import frontend, generate
from snnc.errors import SnnError
from snnc.ir import expr as ex
from snnc.kernels import context as kernel_context
from snnc.kernels.cpu import kernel_source
from snnc.kernels.cuda import cuda_source
from snnc.printers import CPrinter, TorchPrinter, split_deep
from snnc.runtime import fused, native

needs_cc = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                              reason="no C compiler on this machine")
# a kernel that fails to build warns and falls back: here that is a failure
pytestmark = pytest.mark.filterwarnings("error:snnc:UserWarning")

T, B, N = 6, 2, 5


@pytest.fixture(autouse=True)
def kernels_on():
    was_on = fused.enabled()
    yield
    fused.use_fused(was_on)


def model_file(tmp_path, neuron: str, population: str = "M()", name: str = "m.snn"):
    path = tmp_path / name
    path.write_text(f"{neuron}\nnetwork n {{\n    steps = {T}\n    input i[{N}]\n"
                    f"    population p[{N}] = {population}\n    connect i -> p\n}}\n")
    return path


def neuron(body: str, params: str = "th = 1.0") -> str:
    return f"neuron M({params}) {{\n{body}\n}}\n"


@dataclass
class Outputs:
    spikes: torch.Tensor
    states: list[torch.Tensor]
    grads: dict[str, torch.Tensor]   # "x" and each learnable parameter; zeros for none


def outputs(module, x: torch.Tensor, use_kernels: bool) -> Outputs:
    """One run's spikes, final states and the gradients of a weighted sum of the spikes
    (a contiguous gradient): a gradient that the run does not produce counts as zeros."""
    fused.use_fused(use_kernels)
    module.reset()
    xx = x.detach().clone().requires_grad_()
    spikes = module(xx)
    if spikes.requires_grad:
        weights = torch.linspace(0.5, 1.5, spikes.numel(), dtype=x.dtype)
        (spikes * weights.view_as(spikes)).sum().backward()
    named = dict(module.named_parameters())
    grads = {"x": xx.grad if xx.grad is not None else torch.zeros_like(x)}
    grads |= {k: p.grad.clone() if p.grad is not None else torch.zeros_like(p)
              for k, p in named.items()}
    for p in named.values():
        p.grad = None
    pop = module.populations["p"]
    return Outputs(spikes.detach(), [s.detach() for s in pop.states.values()], grads)


def assert_agree(ref: Outputs, got: Outputs) -> None:
    """Identical spikes; states and gradients to rounding (the kernels' exp and friends
    are the C library's, PyTorch's are its own), infinities and NaNs in the same places.
    A gradient is compared only where the reference's is finite everywhere: an infinity
    on the way makes the others NaN or not depending on the order of the products."""
    assert got.spikes.shape == ref.spikes.shape == (T, B, N)
    assert torch.equal(got.spikes, ref.spikes)
    for g, r in zip(got.states, ref.states, strict=True):
        assert g.shape == r.shape
        torch.testing.assert_close(g, r, rtol=1e-6, atol=1e-9, equal_nan=True)
    for name, r in ref.grads.items():
        if torch.isfinite(r).all():
            scale = 1e-9 * max(1.0, r.abs().max().item())
            torch.testing.assert_close(got.grads[name], r, rtol=1e-6, atol=scale,
                                       msg=lambda m, name=name: f"gradient of {name}: {m}")


def build_and_compare(path, scale: float = 1.5, seed: int = 0) -> tuple[Outputs, Outputs]:
    module = snnc_compile(path)().double()
    x = torch.randn(T, B, N, generator=torch.Generator().manual_seed(seed),
                    dtype=torch.float64) * scale
    ref, got = outputs(module, x, False), outputs(module, x, True)
    assert_agree(ref, got)
    return ref, got


def has_kernel(path) -> bool:
    return snnc_compile(path)().populations["p"].kernel is not None


# ------------------------------------------------------------------ class 3: they build
BUILDS = {
    "abs": "state v = 0\ncharge v = v + abs(x) - 0.5 * abs(v)\nfire v >= th\nreset { v = 0 }",
    "comparison as a value": "state v = 0\ncharge v = v * 0.5 + x * (v > 0) + x\n"
                             "fire v >= th\nreset { v = 0 }",
    "if on a comparison": "state v = 0\ncharge v = v + if(x > 0, x, 0.5 * x)\n"
                          "fire v >= th\nreset { v = 0 }",
    "and or not in if": "state v = 0\ncharge v = v + if(x > 0 and v < 1 or not (x > -1), x, 0)"
                        "\nfire v >= th\nreset { v = 0 }",
    "min max clamp": "state v = 0\ncharge v = clamp(v + x, -1, 2) + min(x, 0) * max(v, 0.1)\n"
                     "fire v >= th\nreset { v = v - th }",
    "big integer products": "state v = 0\ncharge v = v * 0.5 + x * 1000000000000 * "
                            "1000000000000 / 1000000000000 / 1000000000000\n"
                            "fire v >= th\nreset { v = 0 }",
    "powers": "state v = 0\ncharge v = 0.5 * v ** 2 - 0.1 * v ** 3 + abs(x) ** 0.5 + "
              "0.1 * abs(v + 1) ** 1.5 + 0.01 * (abs(v) + 1) ** -1 + x * 2 ** v\n"
              "fire v >= th\nreset { v = 0 }",
    "40 nested sigmoids": "state v = 0\ncharge v = " + "sigmoid(" * 40 + "v + x" + ")" * 40
                          + "\nfire v >= 0.6\nreset { v = 0 }",
    "60 nested calls of every function": "state v = 0\ncharge v = " + "".join(
        ["tanh(", "sigmoid(", "abs(", "max(-1, ", "min(2, ", "sqrt("] * 10)
        + "v + x" + ")" * 60 + "\nfire v >= 0.5\nreset { v = 0 }",
    "190 nested negations": "state v = 0\ncharge v = " + "-" * 190 + "v + x"
                            + "\nfire v >= th\nreset { v = 0 }",
    "a long chain of nots": "state v = 0\nstate c = 0\ncharge { c = " + "not " * 150 + "(x > 0)"
                            + "\nv = v + c * x }\nfire v >= th\nreset { v = 0 }",
}


@needs_cc
@pytest.mark.parametrize("name", list(BUILDS))
def test_every_expression_compiles_and_the_kernels_agree(tmp_path, name):
    path = model_file(tmp_path, neuron(BUILDS[name]))
    assert has_kernel(path)
    ref, _ = build_and_compare(path)
    assert ref.spikes.sum() > 0


TEN12 = "1000000000000"
REFUSED = [  # (expression in `charge v = v + EXPR`, message, where it points: the text of
             # the culprit and which of its occurrences)
    ("x / 0", "division by zero", "0", 1),
    ("x / (a - a)", "division by zero", "a - a", 1),
    ("exp(1000) * x", "exp() is undefined for 1000", "exp", 1),
    ("log(-1) * x", "log() is undefined for -1", "log", 1),
    ("sqrt(-1) * x", "sqrt() is undefined for -1", "sqrt", 1),
    ("(-8) ** (1/3) * x", "not a real number", "-8", 1),
    ("x * (1 / 0)", "division by zero", "0", 1),
    ("x * 0 ** -1", "zero to a negative power", "0", 1),
    # 2 ** 2 ** 2 ** 2 ** 2 ** 2 is 2^65536, from the third 2 on
    ("v ** 2 ** 2 ** 2 ** 2 ** 2 ** 2 ** 2", "out of range", "2", 3),
    (f"x * {TEN12} * {TEN12} * ({TEN12} * {TEN12} * {TEN12})", "number too large", TEN12, 3),
    ("if(x > 0, x, log(0))", "log() is undefined for 0", "log", 1),
]


@pytest.mark.parametrize("expr, message, culprit, nth", REFUSED)
def test_an_undefined_constant_is_refused_where_it_is_written(tmp_path, expr, message,
                                                              culprit, nth):
    """The folder computes constant parts; one without a (finite) value is an error at
    its position, not an infinity or a NaN in generated code."""
    line = f"charge v = v + {expr}"
    path = model_file(tmp_path, neuron(f"state v = 0\n{line}\nfire v >= th\n"
                                       "reset { v = 0 }", "th = 1.0, a = 2.0"))
    with pytest.raises(SnnError, match=re.escape(message)) as info:
        generate(path)
    col = -1
    for _ in range(nth):
        col = line.index(culprit, col + 1)
    assert (info.value.line, info.value.col) == (3, col + 1)


def test_a_branch_that_a_known_condition_drops_is_not_evaluated(tmp_path):
    path = model_file(tmp_path, neuron("state v = 0\ncharge v = v + if(k > 0, x, log(-1))\n"
                                       "fire v >= 1\nreset { v = 0 }", "k = 1"))
    (graph,) = frontend(path)
    assert graph.nodes["p"]["node"].equations.charge[0].value == ex.Binary(
        "+", ex.Name("v"), ex.Name("x"))


def test_non_finite_numbers_never_print_as_bare_names():
    """The folder keeps them out; should one get through, it still prints as a number."""
    for value in (math.inf, -math.inf, math.nan):
        text = TorchPrinter()(ex.Number(value))
        result = eval(text, {"__builtins__": {}})  # a literal expression, no names
        assert (math.isnan(result) and math.isnan(value)) or result == value
        assert "inf" not in CPrinter()(ex.Number(value)).replace("INFINITY", "")
        assert "nan" not in CPrinter()(ex.Number(value)).lower().replace("(real)nan", "")


def test_deep_expressions_print_in_parts_with_the_same_value():
    """Python's parser takes 200 nested parentheses, clang 256 brackets: a deeper
    expression is printed as temporaries, which compute the same value."""
    expr: ex.Expr = ex.Name("x")
    for i in range(130):
        expr = ex.Binary("*", ex.Call("tanh", (expr,)), ex.Number(1.0 + i / 100))
    names = iter(f"_e{i}" for i in range(100))
    parts, root = split_deep(expr, lambda: next(names))
    assert len(parts) >= 5 and all(part.depth <= 40 for _, part in parts) and root.depth <= 40
    printer = TorchPrinter()
    scope = {"torch": torch, "x": torch.tensor(0.3, dtype=torch.float64)}
    for name, part in parts:
        scope[name] = eval(printer(part), scope)  # the test's own expressions
    whole = scope["x"]
    for i in range(130):
        whole = torch.tanh(whole) * (1.0 + i / 100)
    assert eval(printer(root), scope) == whole


# ------------------------------------------------------------------ class 6: bounded
BLOWUPS = {
    "30 lines of v = v * v + v": "state v = 0\ncharge {\n" + "\n".join(
        ["    v = v * v * 0.01 + v * 0.5"] * 30) + "\n    v = v + x\n}\nfire v >= th\n"
        "reset { v = 0 }",
    "60 nested tanh": "state v = 0\ncharge v = " + "tanh(" * 60 + "v + x" + ")" * 60
                      + "\nfire v >= 0.5\nreset { v = 0 }",
    "a state read by every line": "state v = 0\nstate u = 0\ncharge {\n" + "\n".join(
        ["    u = u * 0.9 + v * x"] * 60) + "\n    v = v + x\n}\nfire v >= th\n"
        "reset { v = 0 }",
}


@needs_cc
@pytest.mark.parametrize("name", list(BLOWUPS))
def test_building_stays_fast_and_small(tmp_path, name):
    """Substituting each charge line into the next grew the derivatives exponentially (14
    lines of `v = v * v + v`: 26 s and 14 MB; 60 nested tanh: over ten minutes). On the
    tape, size and time are linear."""
    path = model_file(tmp_path, neuron(BLOWUPS[name]))
    start = time.perf_counter()
    ((_, source),) = generate(path)
    assert time.perf_counter() - start < 2.0
    assert len(source) < 400_000
    build_and_compare(path, scale=0.5)


def test_a_step_beyond_the_size_bound_gets_no_kernel(tmp_path):
    """The C compiler's time grows faster than the kernel: beyond the bound the reference
    step runs, and the module says so by carrying no kernel."""
    lines = kernel_context.MAX_TAPE_ENTRIES // 2 + 1  # two operations a line
    body = ("state v = 0\ncharge {\n" + "\n".join(f"    v = v * 0.5 + {i}" for i in range(lines))
            + "\n    v = v + x\n}\nfire v >= th\nreset { v = 0 }")
    path = model_file(tmp_path, neuron(body))
    start = time.perf_counter()
    module = snnc_compile(path)()
    assert time.perf_counter() - start < 2.0
    assert module.populations["p"].kernel is None
    assert module(torch.rand(T, B, N)).shape == (T, B, N)


# ------------------------------------------------------------------ class 5: they agree
AGREE = {
    # the fused path returned [T, B, N], the reference [T]
    "fire on a learnable param": (
        "state v = 0\nparam w = 0.7 learnable\ncharge v = v + x\nfire w > 0.5\n"
        "reset { v = 0 }", "M()"),
    # the fused output carried no gradient where the reference had the surrogate's
    "fire on x": ("state v = 0\ncharge v = v + x\nfire x >= 0.5\nreset { v = 0 }", "M()"),
    "reset by a learnable threshold": (
        "state v = 0\nparam theta = 1 learnable\ncharge v = v * 0.9 + x\nfire v >= theta\n"
        "reset { v = v - theta }", "M()"),
    "reset to x and a param": (
        "state v = 0\nparam w = 0.2 learnable\ncharge v = v * 0.9 + x\nfire v >= 1\n"
        "reset { v = x * w }", "M(detach_reset = true)"),
    "a state charged to a constant": (
        "state v = 0\nstate u = 0\ncharge { v = 1.0; u = u * 0.5 + x * v }\n"
        "fire u >= v\nreset { u = 0 }", "M()"),
    "a state charged to a param": (
        "state v = 0\nstate u = 0\nparam w = 0.8 learnable\ncharge { v = w; u = u + x }\n"
        "fire u >= v\nreset { u = 0 }", "M(refractory = 1)"),
}


@needs_cc
@pytest.mark.parametrize("name", list(AGREE))
def test_fused_and_reference_agree_on_odd_models(tmp_path, name):
    body, population = AGREE[name]
    path = model_file(tmp_path, neuron(body), population)
    assert has_kernel(path)
    ref, got = build_and_compare(path)
    assert ref.spikes.sum() > 0
    assert any(g.abs().sum() > 0 for g in ref.grads.values())


@pytest.mark.parametrize("fire, expected", [("th > 0", 1.0), ("true", 1.0), ("false", 0.0),
                                            ("th < 0 or th > 5", 0.0)])
def test_a_constant_fire_spikes_everywhere_or_nowhere(tmp_path, fire, expected):
    """No kernel for a condition that is no comparison of something changing: the
    reference step runs on both paths, with one spike per neuron."""
    path = model_file(tmp_path, neuron(f"state v = 0\ncharge v = v + x\nfire {fire}\n"
                                       "reset { v = 0 }"))
    module = snnc_compile(path)()
    for use_kernels in (False, True):
        fused.use_fused(use_kernels)
        module.reset()
        spikes = module(torch.rand(T, B, N))
        assert spikes.shape == (T, B, N) and not spikes.requires_grad
        assert torch.equal(spikes, torch.full_like(spikes, expected))


def test_which_outputs_carry_a_gradient(tmp_path):
    """As in the reference step: spikes on a state that nothing differentiable reaches
    carry none (the runtime detaches everything); final states that x reaches do."""
    cases = {"fire on a constant state": ("state v = 0\ncharge v = 1.0\nfire v >= th\n"
                                          "reset { v = 0 }", (False, False)),
             "fire on a comparison kept in a state": (
                 "state v = 0\nstate due = 0\ncharge { due = v >= 1; v = v + x }\n"
                 "fire due >= 1\nreset none", (False, True)),
             "fire on x": ("state v = 0\ncharge v = v\nfire x >= 0.5\nreset { v = 0 }",
                           (True, True))}
    for i, (body, expected) in enumerate(cases.values()):
        path = model_file(tmp_path, neuron(body), name=f"m{i}.snn")
        (graph,) = frontend(path)
        context = kernel_context.step_context(graph.nodes["p"]["node"])
        assert (bool(context["spike_sources"]), bool(context["any_sources"])) == expected


@pytest.mark.parametrize("charge, x_grad, expected", [
    ("v = v + x", False, False),         # d is learnable but reaches nothing
    ("v = v + x", True, True),
    ("v = v + x * d", False, True),
    ("v = v + x * d", True, True),
])
def test_the_spikes_require_grad_exactly_when_the_references_do(tmp_path, charge, x_grad,
                                                                 expected):
    path = model_file(tmp_path, neuron(f"param d = 1 learnable\nstate v = 0\ncharge {charge}"
                                       "\nfire v >= 1\nreset { v = 0 }"))
    module = snnc_compile(path)()
    for use_kernels in (False, True):
        fused.use_fused(use_kernels)
        module.reset()
        x = torch.rand(3, 2, N, requires_grad=x_grad)
        assert module(x).requires_grad is expected, use_kernels


# ------------------------------------------------------------------ names and sharing
HOSTILE_NAMES = ["int", "real", "exp", "BLOCK", "GROUP", "M_PI", "spike", "fired", "fire_g",
                 "g_v", "rt", "torch", "x_", "lambda", "None", "__debug__", "_e0", "s0",
                 "p0", "t0", "d_x", "prev_s0", "h", "rest", "count", "reset_on", "self",
                 "float", "def", "return", "g_spike", "grad_spike", "SLOTS", "REAL"]


@needs_cc
@pytest.mark.parametrize("chunk", range(0, len(HOSTILE_NAMES), 6))
def test_no_name_can_break_the_generated_code(tmp_path, chunk):
    """States and learnable params named like Python keywords and builtins, the step
    function's and the kernels' own names, C keywords and macros."""
    names = HOSTILE_NAMES[chunk:chunk + 6]
    a, b, c, d, e, f = (names + HOSTILE_NAMES[:6])[:6]
    body = (f"state {a} = 0\nstate {b} = 0.1\nparam {c} = 0.9 learnable\n"
            f"param {d} = 0.2 learnable\ncharge {{ {a} = {a} * {c} + x; {b} = {b} + {a} * {d} }}"
            f"\nfire {a} >= 1 + {b} * 0.1\nreset {{ {a} = {a} - 1; {b} = {b} * {c} }}")
    path = model_file(tmp_path, neuron(body, f"{e} = 1.0, {f} = 2.0"))
    assert has_kernel(path)
    ref, _ = build_and_compare(path)
    assert ref.spikes.sum() > 0


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="no nvcc on this machine")
def test_the_cuda_kernels_of_an_odd_model_build(tmp_path):
    """Every function, a power PyTorch special-cases, a deep expression split into
    temporaries and names that are C's, CUDA's or the template's own."""
    body = ("state real = 0\nstate BLOCK = 0.1\nparam M_PI = 0.9 learnable\n"
            "charge { real = real * M_PI + x + 0.1 * clamp(exp(-abs(BLOCK)), 0, 1) ** 3; "
            "BLOCK = max(min(log(1 + BLOCK * BLOCK), sqrt(abs(real))), tanh(real)) + "
            + "sigmoid(" * 45 + "real" + ")" * 45 + " }\n"
            "fire real >= 1 + if(BLOCK > 0 and not (x < 0), BLOCK, 0) ** -1\n"
            "reset { real = real - 1; BLOCK = BLOCK ** 2 }")
    path = model_file(tmp_path, neuron(body))
    source = snnc_compile(path)().populations["p"].kernel_cuda
    assert source is not None and "const real e0" in source
    lib = native.build_and_open(shutil.which("nvcc"), source,
                                (*native.CUDA_FLAGS, "-DREAL=float"), suffix="cu",
                                machine=lambda: "")
    errors = "\n".join(f.read_text() for f in native.cache_dir().rglob("*.failed"))
    assert lib is not None, errors


def test_kernel_sources_do_not_depend_on_the_population(tmp_path):
    """The runtime caches a library per source: populations of one model and parameters
    share one, whatever their names and sizes."""
    path = tmp_path / "two.snn"
    path.write_text("network n {\n input i[4]\n population popA1[4] = LIF(tau = 3.0)\n"
                    " population popB2[7] = LIF(tau = 3.0)\n"
                    " population popC3[4] = LIF(tau = 2.0)\n"
                    " connect i -> popA1\n connect popA1 -> popB2 : dense\n"
                    " connect i -> popC3\n}\n")
    (graph,) = frontend(path)
    pops = [graph.nodes[n]["node"] for n in ("popA1", "popB2", "popC3")]
    sources = [(kernel_source(p, kernel_context.step_context(p)),
                cuda_source(p, kernel_context.step_context(p))) for p in pops]
    assert sources[0] == sources[1] != sources[2]
    assert "popA1" not in sources[0][0] + sources[0][1]
    keys = [kernel_context.kernel_key(p) for p in pops]
    assert keys[0] == keys[1] != keys[2]


# ------------------------------------------------------------------ random models
class ModelGenerator:
    """Random neuron models over the language's operators and functions (LANGUAGE.md
    §5): expression trees over x, the states, build-time and learnable params and
    numbers, a random comparison to fire on, a random reset, population options."""

    UNARY = ("exp", "log", "sqrt", "tanh", "sigmoid", "abs")
    BINARY = ("+", "-", "*", "/", "**", ">", "<", ">=", "<=", "==", "!=", "and", "or")

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        names = self.rng.sample(HOSTILE_NAMES + ["v", "u", "w", "a", "b", "c"], 7)
        n_states, n_learnable = self.rng.randint(1, 3), self.rng.randint(0, 2)
        self.states = names[:n_states]
        self.learnable = names[n_states:n_states + n_learnable]
        self.params = names[n_states + n_learnable:n_states + n_learnable + 2]

    def number(self) -> str:
        return self.rng.choice(["0", "0.5", "1", "2", "0.1", "-0.3", "1.5", "3"])

    def leaf(self, dynamic: bool) -> str:
        names = ["x", *self.states] if dynamic else []
        names += self.learnable + self.params
        if not names or self.rng.random() < 0.25:
            return self.number()
        return self.rng.choice(names)

    def expr(self, depth: int, dynamic: bool = True) -> str:
        rng = self.rng
        if depth == 0 or rng.random() < 0.25:
            return self.leaf(dynamic)
        kind = rng.random()
        sub = lambda: self.expr(depth - 1, dynamic)  # noqa: E731
        if kind < 0.35:
            op = rng.choice(self.BINARY[:4] * 3 + self.BINARY[4:])
            if op == "**":
                exponent = rng.choice(["2", "3", "0.5", "-1", "-2", "-0.5", "1.5", sub()])
                return f"({sub()}) ** ({exponent})"
            return f"({sub()} {op} {sub()})"
        if kind < 0.6:
            return f"{rng.choice(self.UNARY)}({sub()})"
        if kind < 0.75:
            return f"{rng.choice(['min', 'max'])}({sub()}, {sub()})"
        if kind < 0.82:
            return f"clamp({sub()}, {sub()}, {sub()})"
        if kind < 0.92:
            return f"if({sub()}, {sub()}, {sub()})"
        return f"{rng.choice(['-', 'not '])}({sub()})"

    def text(self) -> str:
        rng = self.rng
        lines = [f"state {s} = {self.number()}" for s in self.states]
        lines += [f"param {p} = {self.number()} learnable" for p in self.learnable]
        charge = [f"{rng.choice(self.states)} = {self.expr(3)}"
                  for _ in range(rng.randint(1, 3))]
        charge.append(f"{self.states[0]} = {self.states[0]} * 0.5 + x")  # something fires
        lines.append("charge { " + "; ".join(charge) + " }")
        lines.append(f"fire {self.fire()}")
        lines.append(self.reset())
        params = ", ".join(f"{p} = {self.number()}" for p in self.params)
        return f"neuron M({params}) {{\n" + "\n".join(lines) + "\n}\n"

    def fire(self) -> str:
        op = self.rng.choice([">=", ">", "<=", "<"])
        if self.rng.random() < 0.1:
            return self.rng.choice(["true", f"{self.leaf(False)} > 0", f"x {op} 0.5"])
        side = self.states[0] if self.rng.random() < 0.6 else self.expr(2)
        return f"{side} {op} {self.expr(1)}" if op in (">=", ">") else \
            f"{self.expr(1)} {op} {side}"

    def reset(self) -> str:
        choice = self.rng.random()
        if choice < 0.15:
            return "reset none"
        assigns = [f"{s} = {self.rng.choice(['0', self.expr(2), f'{s} - 0.5'])}"
                   for s in self.rng.sample(self.states, self.rng.randint(1, len(self.states)))]
        return "reset { " + "; ".join(assigns) + " }"

    def population(self) -> str:
        rng = self.rng
        options = [rng.choice(["", "surrogate = atan(alpha = 2.0)", "surrogate = rect()",
                               "surrogate = piecewise(1.0, 0.01, 0.5)",
                               "surrogate = sign_swish(beta = 3.0)"]),
                   rng.choice(["", "", "detach_reset = true"]),
                   rng.choice(["", "", "refractory = 2"])]
        return "M(" + ", ".join(o for o in options if o) + ")"


def generated_case(tmp_path, seed: int) -> tuple[str, object | None]:
    """A generated model's text, and its file if it builds (None when it is refused,
    which must be an SnnError)."""
    gen = ModelGenerator(seed)
    text = gen.text()
    path = model_file(tmp_path, text, gen.population(), name=f"g{seed}.snn")
    try:
        generate(path)
    except SnnError:
        return text, None
    return text, path


@needs_cc
@pytest.mark.parametrize("seeds", [range(i, i + 6) for i in range(0, 30, 6)],
                         ids=lambda seeds: f"{seeds.start}-{seeds.stop - 1}")
def test_generated_models_build_or_are_refused_and_agree(tmp_path, seeds):
    built = 0
    for seed in seeds:
        text, path = generated_case(tmp_path, seed)
        if path is None:
            continue
        built += 1
        try:
            build_and_compare(path, seed=seed)
        except AssertionError as error:
            raise AssertionError(f"seed {seed}:\n{text}\n{error}") from None
    assert built >= 3  # most generated models build
