"""What the fused kernels of every target share: a population's step as C expressions and
its reverse from the step's tape (kernels.tape), the context that each target's template
renders (cpu.c.j2, cuda.cu.j2). A target is a renderer over this context, not a fork of it.

Nothing the user named reaches the C source as an identifier: the model's states are
s0, s1, ..., its learnable parameters p0, p1, ... (their names only in a comment), so no
name can collide with C's keywords, the math library's names or the template's own
(`real`, `exp`, `BLOCK`, `spike`, ...), and two populations whose folded equations,
surrogate, refractory period and feedback group are the same get byte-identical sources
(kernel_key): the runtime builds one library for all of them.
"""
from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from functools import lru_cache

from snnc import __version__
from snnc.backends.steps import reset_line
from snnc.ir import expr as ex
from snnc.ir.nodes import Equations, Population
from snnc.kernels.abi import KERNEL_ABI
from snnc.kernels.tape import StepTape, step_tape, value_of
from snnc.limits import MAX_TAPE_ENTRIES
from snnc.passes.fold import fold
from snnc.printers import CPrinter, split_deep
from snnc.registry import SURROGATES

# The reset forms in C, in rt.blend's evaluation order: old * (1 - fired) + new * fired.
C_RESET = {"zero": "{t} = {t} * ((real)1.0 - spike);", "subtract": "{t} = {t} - spike * {v};",
           "blend": "{t} = {t} * ((real)1.0 - spike) + {v} * spike;"}


def supports(pop: Population) -> bool:
    """Fused kernels cover charge/fire/reset models whose fire is a comparison, up to a
    size (MAX_TAPE_ENTRIES)."""
    eq = pop.equations
    return (eq is not None and eq.kernel is None
            and getattr(eq.fire, "op", None) in (">=", ">", "<=", "<")
            and len(_tape(pop).tape.entries) <= MAX_TAPE_ENTRIES)


def supports_cuda(pop: Population) -> bool:
    """The CUDA kernels do not (yet) carry ILC feedback, which the CPU's do."""
    return supports(pop) and not pop.feedback_group


def kernel_key(pop: Population) -> tuple:
    """Everything a population's kernel sources depend on, and nothing else: equal keys,
    identical sources. (The population's size matters only with ILC feedback, whose
    groups the kernels index within a sample.)"""
    states = pop.model.states
    surrogate = (pop.surrogate.kind, tuple(sorted(pop.surrogate.params.items())))
    group = pop.feedback_group or 0
    return (pop.model.name, pop.equations, states, tuple(pop.learnable), surrogate,
            pop.refractory, group, pop.size if group else 0)


def step_context(pop: Population) -> dict:
    """The target-independent part of the template context of the population's kernels:
    names, slots, the step's tape and its reverse (computed once for all targets and for
    all populations with the same kernel_key); `real` is a macro (REAL=float or double)
    chosen when the kernels are compiled."""
    return dict(_context(kernel_key(pop)))  # a copy: the cached one stays as computed


def printed_step(pop: Population, context: dict, printer_type: type[CPrinter]) -> dict:
    """The step's own expressions (charge, fire, reset) and its reverse in C, printed by
    `printer_type` the way the target's PyTorch evaluates them (see CudaPrinter)."""
    return dict(_printed(kernel_key(pop), printer_type))


# ------------------------------------------------------------------ computed once per key
@lru_cache(maxsize=256)
def _context(key: tuple) -> dict:
    model, eq, states, learnable, (kind, surrogate), refractory, group, size = key
    step = _step_tape(eq, states, learnable)
    c_names = _c_names(states, learnable)
    spike_sources, any_sources = step.reach_masks()
    # the rows of the state array: the model's states, the ILC feedback into the next
    # step's input, the refractory countdown
    slots = ([c_names[s] for s in states] + (["carried"] if group else [])
             + (["count"] if refractory else []))
    return dict(
        version=__version__, abi=KERNEL_ABI, model=commentable(model),
        surrogate=_surrogate(kind, dict(surrogate)),
        names=[f"{c_names[n]}: {commentable(n)}" for n in (*states, *learnable)],
        states=[{"c": c_names[s]} for s in states], params=[{"c": c_names[p]} for p in learnable],
        slots=slots, refractory=refractory,
        spike_sources=spike_sources, any_sources=any_sources,
        # ILC: groups of `group` neighbouring neurons, which blocks of neurons never split
        group=group, size=size, block=group * max(1, 256 // group) if group else 256)


@lru_cache(maxsize=256)
def _printed(key: tuple, printer_type: type[CPrinter]) -> dict:
    _, eq, states, learnable, *_ = key
    c_names = _c_names(states, learnable)
    printer = printer_type(lambda name: c_names.get(name, name))
    fresh = _fresh("e")  # the forward's temporaries, where an expression nests deeply
    charge = []
    for a in eq.charge:
        charge += _split(a.value, fresh, printer, lambda root, t=c_names[a.target]:
                         f"{t} = {printer(root)};")
    fire = _split(eq.fire_difference(), fresh, printer, lambda root: f"h = {printer(root)};")
    reset = []
    for a in eq.reset:
        reset += _split(a.value, fresh, printer, lambda root, a=a: reset_line(
            c_names[a.target], ex.Assign(a.target, root), printer, C_RESET))
    return dict(charge=charge, fire=fire, reset=reset,
                **_reverse(_step_tape(eq, states, learnable), states, learnable,
                           printer_type(lambda name: name)))


def _surrogate(kind: str, params: dict) -> str:
    """The body of surrogate_grad(h): the derivative in h (snnc.registry.surrogates) in C,
    its temporaries first, the parameters folded in as floats (so `alpha / 2` never reads
    as C's integer division)."""
    entry, env = SURROGATES[kind], {k: float(v) for k, v in params.items()}
    printer = CPrinter()
    lines = [f"const real {a.target} = {printer(fold(a.value, env))};" for a in entry.steps]
    return " ".join([*lines, f"return {printer(fold(entry.derivative, env))};"])


def _split(expr: ex.Expr, fresh: Callable[[], str], printer: CPrinter,
           last: Callable[[ex.Expr], str]) -> list[str]:
    """C statements computing `expr`: its deep parts as temporaries, then `last(root)`."""
    parts, root = split_deep(expr, fresh)
    return [f"const real {name} = {printer(part)};" for name, part in parts] + [last(root)]


def _reverse(step: StepTape, states, learnable, printer: CPrinter) -> dict:
    """One step in reverse, as statements over what the template declares (step.h.j2's
    reverse_step): x, prev_<s> (the state before the step), the parameters, g_<s> (the
    gradient reaching the state after it), grad_spike (reaching the spike) and reset_on.
    They recompute the step's values (t0, t1, ...), then the adjoints (d_...); what
    remains, the gradients reaching x, the states before the step and the parameters,
    are expressions (g_x, g_prev, g_param)."""
    tape = step.tape
    seeds: dict[str, list[ex.Expr]] = {}
    outputs = [(step.after[s], f"g_{_state(i)}") for i, s in enumerate(states)]
    outputs.append((step.spike, "grad_spike"))
    for value, gradient in outputs:
        if isinstance(value, ex.Name):
            seeds.setdefault(value.id, []).append(ex.Name(gradient))
    sources = step.gradient_sources()
    # The spike's gradient is there at every step; a state's may be none at all (on the
    # last step without a loss on the final state, or where no later step reads it),
    # which autograd skips and a product by 0 would not: what only the states' gradients
    # reach passes nothing on while they are 0 (Tape.reverse's `weak`).
    live = tape.live(sources)
    weak = live - tape.needed({step.spike.id})
    statements, results = tape.reverse(seeds, sorted(sources), live, weak)
    lines = [f"const real {name} = {printer(value_of(expr))};" for name, expr in tape.entries]
    lines += [f"{target} += {printer(expr)};" if accumulate
              else f"real {target} = {printer(expr)};" for target, expr, accumulate in statements]
    return dict(backward=lines, g_x=printer(results["x"]),
                g_prev={_state(i): printer(results[f"prev_{_state(i)}"])
                        for i in range(len(states))},
                g_param={_param(j): printer(results[_param(j)]) for j in range(len(learnable))})


@lru_cache(maxsize=256)
def _step_tape(eq: Equations, states: tuple[str, ...], learnable: tuple[str, ...]) -> StepTape:
    """The step on its tape, its inputs named as reverse_step declares them."""
    names = {"x": "x", **{s: f"prev_{_state(i)}" for i, s in enumerate(states)},
             **{p: _param(j) for j, p in enumerate(learnable)}}
    return step_tape(eq, states, learnable, names)


def _tape(pop: Population) -> StepTape:
    return _step_tape(pop.equations, pop.model.states,
                      tuple(pop.learnable))


def _state(i: int) -> str:
    return f"s{i}"


def _param(j: int) -> str:
    return f"p{j}"


def _c_names(states, learnable) -> dict[str, str]:
    """The model's names as the kernels' variables; `x` is the input in both."""
    return {"x": "x", **{s: _state(i) for i, s in enumerate(states)},
            **{p: _param(j) for j, p in enumerate(learnable)}}


def _fresh(prefix: str) -> Callable[[], str]:
    counter = itertools.count()
    return lambda: f"{prefix}{next(counter)}"


def commentable(name: str) -> str:
    """A name as a C comment may show it: identifier characters only (a model's names
    are identifiers; this keeps any other from ending the comment or the line)."""
    return re.sub(r"[^A-Za-z0-9_]", "?", name)
