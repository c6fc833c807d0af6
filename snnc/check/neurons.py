"""Checks of neuron definitions, and binding a population's arguments to its model."""
from __future__ import annotations

from collections.abc import Mapping

from snnc.check import values
from snnc.check.signatures import convert, unknown_param
from snnc.check.values import Evaluator, check_kind, describe, quantity_kind
from snnc.errors import SnnError, unknown
from snnc.frontend import ast
from snnc.ir.nodes import Model
from snnc.ir.values import Normal, Spec, Symbol, Uniform, Value
from snnc.printers import SnnPrinter
from snnc.registry import POPULATION_COMMON, PUBLIC, Param, Signature
from snnc.registry.core import EVENT, neuron_backends

# Names every neuron body can read: the input current, the step, and (kernels) time.
INPUT, DT, TIME = "x", "dt", "t"
RESERVED = {INPUT: "the neuron's input current", DT: "the time step", TIME: "kernel time"}
RESET_KINDS = ("hard", "soft", "none")
FEEDBACKS = {"ilc": "dec_pop_dim"}  # SpikingJelly's inter-layer connection (seed 002)
# Names of model parameters that are times whatever their default (docs/EXTENSIONS.md):
# a word of the name that starts with `tau` (tau, tau_s, init_tau), or a refractory period.
_TIME_WORD = "tau"
_REFRACTORY_PREFIXES = ("refrac", "t_ref", "tref")


def param_quantity(decl: ast.ParamDecl) -> str | None:
    """The kind of quantity a model parameter takes, which model parameters do not
    declare: a time for a time constant or refractory period by its name, else the kind
    of the units its default is written with; None (any) when that says nothing."""
    name = decl.name.lower()
    if any(word.startswith(_TIME_WORD) for word in name.split("_")) \
            or name.startswith(_REFRACTORY_PREFIXES):
        return values.TIME
    kinds = {quantity_kind(q) for q in _quantities(decl.default)}
    return kinds.pop() if len(kinds) == 1 else None


def _quantities(expr: ast.Expr) -> list[ast.Quantity]:
    return [node for node in ast.subexpressions(expr) if isinstance(node, ast.Quantity)]


# ------------------------------------------------------------------ definitions
def check_neuron(defn: ast.NeuronDef) -> None:
    """Everything that can be checked about a model without a population using it."""
    _check_unique_names(defn)
    _check_clauses(defn)
    signature = [p.name for p in defn.params]
    for i, param in enumerate(defn.params):
        _check_names(param.default, set(signature[:i]) | {DT}, defn, "a parameter default")
        _check_default_kind(param)
    known = set(signature) | {DT}
    for stmt in defn.body_params:
        _check_names(stmt.value, known, defn, f"param '{stmt.name}'")
        known.add(stmt.name)
    for state in defn.states:
        _check_names(state.init, known, defn, f"state '{state.name}'", distributions=True)
    if defn.kernel is not None:
        _check_names(defn.kernel, known | {TIME}, defn, "the kernel")
        _check_names(defn.fire, known | {"v"}, defn, "fire")
        return
    states = {s.name for s in defn.states}
    dynamic = known | states | {INPUT}
    for assign in (*defn.charge, *(defn.reset.assigns if defn.reset else ())):
        if assign.target not in states:
            raise SnnError(f"'{assign.target}' is assigned but is not a state of {defn.name}",
                           assign.pos, f"declare it with `state {assign.target} = ...`")
        _check_names(assign.value, dynamic, defn, f"the update of '{assign.target}'")
    _check_names(defn.fire, dynamic, defn, "fire")
    _check_reset(defn)
    if defn.feedback is not None:
        _check_feedback(defn, known)


def _check_unique_names(defn: ast.NeuronDef) -> None:
    seen: dict[str, object] = {}
    for item in (*defn.params, *defn.body_params, *defn.states):
        if item.name in RESERVED:
            raise SnnError(f"'{item.name}' is {RESERVED[item.name]} and cannot be redefined",
                           item.pos)
        if item.name in seen:
            raise SnnError(f"'{item.name}' is declared twice in neuron {defn.name}", item.pos,
                           f"first declared at line {seen[item.name].pos.line}")
        seen[item.name] = item


def _check_default_kind(param: ast.ParamDecl) -> None:
    """A time parameter's default written with a rate, or the other way round."""
    kind = param_quantity(param)
    for quantity in _quantities(param.default):
        check_kind(quantity, kind)


def _check_clauses(defn: ast.NeuronDef) -> None:
    if defn.kernel is not None:
        for clause, present in (("charge", defn.charge), ("state", defn.states),
                                ("reset", defn.reset), ("feedback", defn.feedback)):
            if present:
                raise SnnError(f"neuron {defn.name} has a `kernel`, so it cannot have "
                               f"`{clause}`", defn.pos,
                               "a spike-response model is defined by its kernel alone")
        if defn.fire is None:
            raise SnnError(f"neuron {defn.name} has no `fire` condition", defn.pos,
                           "add `fire v >= v_threshold`")
        return
    if defn.charge is None:
        raise SnnError(f"neuron {defn.name} has no `charge`", defn.pos,
                       "add `charge v = ...` (or `kernel ...` for a spike-response model)")
    if not defn.states:
        raise SnnError(f"neuron {defn.name} has no state", defn.pos, "add `state v = 0`")
    if defn.fire is None:
        raise SnnError(f"neuron {defn.name} has no `fire` condition", defn.pos,
                       "add `fire v >= v_threshold`")


def _check_names(expr: ast.Expr | None, known: set[str], defn: ast.NeuronDef, where: str,
                 distributions: bool = False) -> None:
    if expr is None:
        return
    for node in ast.subexpressions(expr):
        if isinstance(node, ast.Name) and node.id not in known:
            raise unknown("name", node.id, known, node.pos, owner=f"{where} of {defn.name}")
        if isinstance(node, ast.Call):
            _check_function(node, distributions)


def _check_function(call: ast.Call, distributions: bool) -> None:
    if distributions and call.func in ("uniform", "normal"):
        return
    if call.func not in PUBLIC:
        raise unknown("function", call.func, PUBLIC, call.pos)
    arity = PUBLIC[call.func].arity
    if call.kwargs or len(call.args) != arity:
        raise SnnError(f"{call.func}() takes {arity} argument{'s' if arity > 1 else ''}, "
                       f"got {len(call.args) + len(call.kwargs)}", call.pos)


def fire_parts(defn: ast.NeuronDef) -> tuple[str, ast.Expr] | None:
    """(state, threshold) when `fire` reads `STATE >= EXPR` or `STATE > EXPR`, STATE one
    of the model's states (a parameter or `x` there has nothing for a reset to set)."""
    fire = defn.fire
    if isinstance(fire, ast.Binary) and fire.op in (">=", ">") and isinstance(fire.left, ast.Name) \
            and fire.left.id in {s.name for s in defn.states}:
        return fire.left.id, fire.right
    return None


def _check_reset(defn: ast.NeuronDef) -> None:
    reset = defn.reset
    if reset is None or reset.kind is None:
        return
    if reset.kind not in RESET_KINDS:
        raise unknown("reset", reset.kind, RESET_KINDS, reset.pos)
    if reset.kind == "none":
        return
    if fire_parts(defn) is None:
        raise SnnError(f"`reset {reset.kind}` needs `fire` of the form `STATE >= THRESHOLD`",
                       defn.fire.pos, "or write the reset as a block: `reset { v = ... }`")
    if reset.kind == "hard" and "v_reset" not in {p.name for p in defn.params}:
        raise SnnError("`reset hard` sets the state to `v_reset`, which this neuron lacks",
                       reset.pos, "add a parameter `v_reset = 0.0`")


def _check_feedback(defn: ast.NeuronDef, known: set[str]) -> None:
    call = defn.feedback
    if call.func not in FEEDBACKS:
        raise unknown("feedback", call.func, FEEDBACKS, call.pos)
    if len(call.args) != 1 or call.kwargs:
        raise SnnError(f"feedback {call.func}() takes one argument, "
                       f"{FEEDBACKS[call.func]}", call.pos)
    _check_names(call.args[0], known, defn, "the feedback")


def backends_of(model: Model) -> tuple[str, ...]:
    """The backends that can execute a model."""
    return neuron_backends(model.event_driven, model.nonlinearity() is None)


def refusal(model: Model, population: str, backend: str) -> str:
    """The error of a backend that cannot run a population's model: for a stepped model
    on the event backend, the term that is not linear."""
    why = ""
    if backend == EVENT and not model.event_driven:
        why = (": it is not linear in its states and input below threshold, at "
               f"`{SnnPrinter()(model.nonlinearity())}`")
    return f"the {backend} backend cannot run {model.name} (population '{population}'){why}"


# ------------------------------------------------------------------ populations
def population_signature(defn: ast.NeuronDef) -> Signature:
    """Every keyword a population of this model accepts, for messages."""
    names = [Param(p.name, "model") for p in defn.params]
    names += list(POPULATION_COMMON)
    names += [Param(f"{s.name}_init", "init") for s in defn.states]
    return Signature(defn.name, tuple(names), "neuron")


def bind_population(call: ast.Call, defn: ast.NeuronDef, ev: Evaluator) -> dict:
    """Evaluate a population's arguments against its model; returns the Population fields."""
    sig = population_signature(defn)
    model_names = [p.name for p in defn.params]
    if len(call.args) > len(model_names):
        raise SnnError(f"{defn.name}() takes at most {len(model_names)} positional arguments",
                       call.args[len(model_names)].pos, f"usage: {sig.usage()}")
    given: dict[str, ast.Expr] = dict(zip(model_names, call.args, strict=False))
    for kw in call.kwargs:
        if kw.name not in sig.names:
            raise unknown_param(sig, kw.name, kw.pos)
        if kw.name in given:
            raise SnnError(f"{defn.name}() got '{kw.name}' twice", kw.pos)
        given[kw.name] = kw.value

    params = _bind_model_params(call, defn, given, ev)
    learnable, env = _bind_body_params(call, defn, params, ev)
    derived = {k: v for k, v in env.items() if k not in params and k not in learnable and k != DT}
    common = {p.name: (convert(p, given[p.name], ev, sig) if p.name in given else p.default)
              for p in POPULATION_COMMON}
    return {
        "params": {**params, **derived},
        "learnable": learnable,
        "state_init": _bind_state_inits(call, defn, given, env, ev, sig),
        "surrogate": common["surrogate"],
        "detach_reset": common["detach_reset"],
        "refractory": common["refractory"],
        "reset": _reset_kind(defn, common["reset"], call),
        "feedback_group": _feedback_group(call, defn, env),
    }


def _bind_model_params(call: ast.Call, defn: ast.NeuronDef, given: Mapping[str, ast.Expr],
                       ev: Evaluator) -> dict[str, Value]:
    params: dict[str, Value] = {}
    for decl in defn.params:
        kind = param_quantity(decl)
        if decl.name in given:
            value = ev.expecting(kind)(given[decl.name])
            pos = given[decl.name].pos
        else:
            value = _in_model(call, defn, decl.default, {**params, DT: ev.dt_ms}, ev.dt_ms,
                              expect=kind)
            pos = call.pos
        if isinstance(value, (Uniform, Normal, Spec, Symbol)):
            raise SnnError(f"{defn.name}(): '{decl.name}' takes a number or true/false, "
                           f"got {describe(value)}", pos,
                           "random values are for states: use `<state>_init = uniform(a, b)`")
        if decl.name.startswith("tau") and not isinstance(value, bool) and value <= 0:
            raise SnnError(f"{defn.name}(): '{decl.name}' is a time constant and must be "
                           f"positive, got {value:g}", pos)
        params[decl.name] = value
    return params


def _bind_body_params(call, defn, params, ev) -> tuple[dict[str, float], dict[str, Value]]:
    env: dict[str, Value] = {**params, DT: ev.dt_ms}
    learnable: dict[str, float] = {}
    for stmt in defn.body_params:
        value = _in_model(call, defn, stmt.value, env, ev.dt_ms, number=True)
        env[stmt.name] = value
        if stmt.learnable:
            learnable[stmt.name] = float(value)
    return learnable, env


def _bind_state_inits(call, defn, given, env, ev, sig) -> dict[str, Value]:
    inits: dict[str, Value] = {}
    for state in defn.states:
        key = f"{state.name}_init"
        if key in given:
            inits[state.name] = convert(Param(key, "init"), given[key], ev, sig)
        else:
            inits[state.name] = _in_model(call, defn, state.init, env, ev.dt_ms)
    return inits


def _reset_kind(defn: ast.NeuronDef, override: Symbol | None, call: ast.Call) -> str:
    if defn.kernel is not None:
        return "none"
    if override is not None:
        kind = override.name
        if kind != "none" and fire_parts(defn) is None:
            raise SnnError(f"reset = {kind} needs {defn.name}'s `fire` to read "
                           "`STATE >= THRESHOLD`", call.pos)
        if kind == "hard" and "v_reset" not in {p.name for p in defn.params}:
            raise SnnError(f"reset = hard needs a `v_reset` parameter, which {defn.name} lacks",
                           call.pos)
        return kind
    if defn.reset is None:
        return "none"
    return defn.reset.kind or "block"


def _feedback_group(call: ast.Call, defn: ast.NeuronDef, env: Mapping[str, Value]) -> int | None:
    if defn.feedback is None:
        return None
    value = _in_model(call, defn, defn.feedback.args[0], env, env[DT], number=True)
    if value != int(value) or value < 1:
        raise SnnError(f"{defn.name}(): {FEEDBACKS[defn.feedback.func]} must be a whole "
                       f"number >= 1, got {value:g}", call.pos)
    return int(value)


def _in_model(call: ast.Call, defn: ast.NeuronDef, expr: ast.Expr, env: Mapping[str, Value],
              dt_ms: float, number: bool = False, expect: str | None = None) -> Value:
    """Evaluate one of the model's own expressions for this population's arguments; an
    error there (`log` of a negative, say) is the arguments' fault, reported at the call."""
    evaluate = Evaluator(dt_ms, env, expect=expect)
    try:
        return evaluate.number(expr) if number else evaluate(expr)
    except SnnError as err:
        raise SnnError(f"with these arguments, {defn.name}: {err.message}", call.pos,
                       err.hint) from None
