"""A network's plan and its tensors -> a NIR graph (`snnc export NET.snn --nir OUT.nir`).

The conventions are docs/NIR.md's, shared with nir_import: NIR is continuous time, snnc
steps by dt, and every decay is read as one forward-Euler step (a decay per step `a` is
τ = dt / (1 − a)). Each population is one neuron node named after it, each op of a
connection one node `<connection>.<op index>`, a connection's delay one Delay node after
its ops; a connection without ops is an edge. What NIR has no node for is one SnnError at
the construct that needs it, before anything is written.
"""
from __future__ import annotations

import io
from collections.abc import Callable
from functools import cache
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from snnc.errors import Pos, SnnError
from snnc.ir.nodes import STDLIB, Encoder, Input, Op, Population, Weights
from snnc.passes.fold import fold
from snnc.plan.lower import lower
from snnc.plan.nodes import Plan, Projection

# The ops NIR has a node for (docs/NIR.md); dropout is the identity outside training.
EXPORTED_OPS = ("dense", "sparse", "one_to_one", "conv1d", "conv2d", "avgpool", "flatten",
                "scale")
SKIPPED_OPS = ("dropout",)
NEURON_MODELS = ("IF", "LIF", "CubaLIF")
# The models `snnc import` writes (nir_models.snn): NIR's own nodes, parameter for parameter,
# times in steps; recognised by their equations, so an import exports back as it came.
IMPORTED = {"NirLIF": ("LIF", ("tau", "r", "v_leak", "v_threshold", "v_reset")),
            "NirCubaLIF": ("CubaLIF", ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold",
                                       "v_reset", "w_in")),
            "NirIF": ("IF", ("r", "v_threshold", "v_reset")),
            "NirLI": ("LI", ("tau", "r", "v_leak")), "NirI": ("I", ("r",))}
TIMES = ("tau", "tau_syn", "tau_mem")


def nir_module():
    """The `nir` package, or the error saying how to get it (it is the `nir` extra)."""
    try:
        import nir
    except ImportError:
        raise SnnError("exporting NIR needs the nir package, which is not installed",
                       hint="pip install 'snnc[nir]'") from None
    return nir


# ------------------------------------------------------------------ the graph
def export_nir(plan: Plan, state: dict[str, torch.Tensor]):
    """(nir.NIRGraph, warnings) of a network's plan with the tensors of its state_dict."""
    nir = nir_module()
    check_exportable(plan)
    warnings: list[str] = []
    dt_s = plan.dt_ms / 1000.0
    nodes: dict = {}
    edges: list[tuple[str, str]] = []
    for source in sources(plan):
        nodes[source.name] = input_node(nir, source, warnings)
    for pop in plan.populations:
        nodes[pop.name] = neuron_node(nir, pop, plan.incoming(pop.name), dt_s)
    for proj in plan.projections:
        at = proj.src
        for i, op in enumerate(proj.ops):
            if op.kind in SKIPPED_OPS:
                warnings.append(f"connection '{proj.name}': {op.kind} is the identity "
                                "outside training and is left out")
                continue
            name = f"{proj.name}.{i}"
            nodes[name] = typed(op_node(nir, op, proj, i, state), op.in_shape, op.out_shape)
            edges.append((at, name))
            at = name
        if proj.delay:
            name = f"{proj.name}.delay"
            nodes[name] = typed(nir.Delay(full(proj.out_shape, proj.delay * dt_s)),
                                proj.out_shape, proj.out_shape)
            edges.append((at, name))
            at = name
        edges.append((at, proj.dst))
    if plan.readout is not None and not reads_out_voltage(plan):  # no reduction in NIR
        target = plan.readout.target
        warnings.append(f"readout {target} = {plan.readout.spec.kind} is not exported: the "
                        f"NIR Output gives {target}'s spikes")
    for name, pop in outputs(plan):
        nodes[name] = nir.Output(output_type=np.array(pop.shape))
        edges.append((pop.name, name))
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": dt_s})
    return graph, warnings


def reads_out_voltage(plan: Plan) -> bool:
    """Whether the readout is an imported leaky integrator's voltage: what NIR's LI and I
    nodes give at the Output already."""
    target = plan.node(plan.readout.target)
    return (plan.readout.spec.kind == "v" and isinstance(target, Population)
            and imported(target.model) and IMPORTED[target.model.name][0] in ("LI", "I"))


def full(shape, value: float) -> np.ndarray:
    return np.full(shape, value, dtype=np.float32)


def typed(node, in_shape, out_shape):
    """The node with its per-sample shapes set, which NIR cannot infer for every node
    (pooling, Delay, Scale)."""
    node.input_type = {"input": np.array(in_shape)}
    node.output_type = {"output": np.array(out_shape)}
    return node


def sources(plan: Plan) -> list[Input | Encoder]:
    """The inputs and encoders connections start from: the graph's Input nodes."""
    used = {proj.src for proj in plan.projections}
    return [n for n in (*plan.inputs, *plan.encoders) if n.name in used]


def input_node(nir, source: Input | Encoder, warnings: list[str]):
    metadata = {}
    if isinstance(source, Encoder):
        # NIR has no encoders: the graph takes the encoder's spikes as its input
        metadata["snnc_encoder"] = source.spec.kind
        warnings.append(f"encoder '{source.name}' ({source.spec.kind}) is not exported: the "
                        f"NIR Input '{source.name}' takes its spikes")
    return nir.Input(input_type=np.array(source.shape), metadata=metadata)


def outputs(plan: Plan) -> list[tuple[str, Population]]:
    """What the network gives, as softbp's forward does: the readout's population, else
    those that feed no other, else all of them; `output` when there is one."""
    if plan.readout is not None:
        chosen = [plan.node(plan.readout.target)]
    else:
        feeding = {proj.src for proj in plan.projections}
        chosen = [p for p in plan.populations if p.name not in feeding] or \
            list(plan.populations)
    if len(chosen) == 1:
        return [("output", chosen[0])]
    return [(f"output_{pop.name}", pop) for pop in chosen]


# ------------------------------------------------------------------ neurons
def neuron_node(nir, pop: Population, incoming: list[Projection], dt_s: float):
    p, shape = pop.params, pop.shape
    # docs/NIR.md: what NIR's continuous time leaves open, for an importer to read
    metadata = {"reset": pop.reset, "dt": dt_s, "discretisation": "forward_euler"}
    if imported(pop.model):
        kind, names = IMPORTED[pop.model.name]
        if kind in ("LI", "I"):
            del metadata["reset"]  # they never fire
        return getattr(nir, kind)(**{n: full(shape, p[n] * (dt_s if n in TIMES else 1.0))
                                     for n in names}, metadata=metadata)
    tau_syn = synapse_decay(pop, incoming)
    if pop.model.name == "IF":
        return nir.IF(r=full(shape, 1.0), v_threshold=full(shape, p["v_threshold"]),
                      v_reset=full(shape, p["v_reset"]), metadata=metadata)
    if pop.model.name == "LIF" and tau_syn is None:
        return nir.LIF(tau=full(shape, p["tau"] * dt_s), r=full(shape, lif_r(p)),
                       v_leak=full(shape, p["v_rest"]),
                       v_threshold=full(shape, p["v_threshold"]),
                       v_reset=full(shape, p["v_reset"]), metadata=metadata)
    if pop.model.name == "LIF":
        # the synapse's exact decay exp(-1/τs) as the τ whose Euler step decays alike
        decay, tau_exact = tau_syn
        steps = 1.0 / (1.0 - decay)
        metadata["snnc_tau_exact"] = float(f"{tau_exact * dt_s:.12g}")  # less -1/log(a)'s noise
        return cuba_lif(nir, shape, steps * dt_s, p["tau"] * dt_s, lif_r(p), p["v_rest"],
                        p["v_threshold"], p["v_reset"], steps, metadata)
    # CubaLIF: c = c·c_decay + x; v = v·v_decay + c
    syn, mem = 1.0 / (1.0 - p["c_decay"]), 1.0 / (1.0 - p["v_decay"])
    return cuba_lif(nir, shape, syn * dt_s, mem * dt_s, mem, 0.0, p["v_threshold"],
                    p["v_reset"], syn, metadata)


def lif_r(p) -> float:
    """decay_input = true scales the input by 1/τ, as NIR's LIF with r = 1; false adds it
    whole, which is r = τ in steps."""
    return 1.0 if p["decay_input"] else p["tau"]


def cuba_lif(nir, shape, tau_syn, tau_mem, r, v_leak, v_threshold, v_reset, w_in, metadata):
    return nir.CubaLIF(tau_syn=full(shape, tau_syn), tau_mem=full(shape, tau_mem),
                       r=full(shape, r), v_leak=full(shape, v_leak),
                       v_threshold=full(shape, v_threshold), v_reset=full(shape, v_reset),
                       w_in=full(shape, w_in), metadata=metadata)


def synapse_decay(pop: Population, incoming: list[Projection]) -> tuple[float, float] | None:
    """(decay per step, τs in steps) of the exp_current every connection into a LIF goes
    through, or None when none has a synapse (check_exportable refused every other case)."""
    if not incoming or incoming[0].synapse is None:
        return None
    decay = exp_current_decay(incoming[0])
    return decay, -1.0 / np.log(decay)


def exp_current_decay(proj: Projection) -> float:
    """`i = i·a + x` of the folded exp_current: its a, read off the equation."""
    (update,) = proj.synapse.update
    return float(fold(update.value, {"i": 1.0, "x": 0.0}).value)


# ------------------------------------------------------------------ ops
def op_node(nir, op: Op, proj: Projection, index: int, state: dict[str, torch.Tensor]):
    def tensor(name: str) -> np.ndarray:
        return state[f"connections.{proj.name}.ops.{index}.{name}"].detach().cpu().numpy() \
            .astype(np.float32)

    kind, p = op.kind, op.params
    if kind == "dense":
        return nir.Affine(tensor("weight"), tensor("bias")) if p["bias"] \
            else nir.Linear(tensor("weight"))
    if kind == "sparse":
        return nir.Linear(sparse_matrix(tensor("weight"), tensor("offsets"), tensor("targets"),
                                        op.out_shape[-1]),
                          metadata={"snnc_connectivity": "sparse"})
    if kind == "one_to_one":
        return nir.Scale(tensor("weight"))
    if kind == "scale":
        return nir.Scale(full(op.in_shape, p["c"]))
    if kind == "flatten":
        return nir.Flatten(input_type={"input": np.array(op.in_shape)}, start_dim=0,
                           end_dim=-1)
    if kind == "avgpool":
        k = np.array([p["k"], p["k"]])
        return nir.AvgPool2d(kernel_size=k, stride=k, padding=np.array([0, 0]))
    weight = tensor("weight")  # conv1d, conv2d
    bias = tensor("bias") if p["bias"] else np.zeros(weight.shape[0], np.float32)
    conv = nir.Conv1d if kind == "conv1d" else nir.Conv2d
    spatial = op.in_shape[1:]
    return conv(input_shape=spatial[0] if kind == "conv1d" else tuple(spatial), weight=weight,
                stride=p["stride"], padding=p["pad"], dilation=1, groups=1, bias=bias)


def sparse_matrix(weight, offsets, targets, out: int) -> np.ndarray:
    """The [out, in] matrix of the synapses that exist (snnc.runtime.sparse's CSR by
    source: source i's synapses are offsets[i]:offsets[i + 1]), zero elsewhere."""
    offsets = offsets.astype(np.int64)
    matrix = np.zeros((out, len(offsets) - 1), dtype=np.float32)
    sources = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    matrix[targets.astype(np.int64), sources] = weight
    return matrix


# ------------------------------------------------------------------ what NIR cannot say
def check_exportable(plan: Plan) -> None:
    """One SnnError at the first construct NIR has no node for (docs/NIR.md)."""
    for pop in plan.populations:
        check_population(pop, plan.incoming(pop.name))
    for proj in plan.projections:
        check_projection(proj, plan.node(proj.dst))


def no_node(what: str, pos: Pos, hint: str | None = None) -> SnnError:
    return SnnError(f"{what}: NIR has no node for it, so the network cannot be exported",
                    pos, hint)


def imported(model) -> bool:
    """Whether `model` is one that `snnc import` writes: its name and its equations those
    of nir_models.snn (a user's model of that name with other equations is not)."""
    reference = _imported_models().get(model.name)
    return reference is not None and all(
        getattr(model, field) == getattr(reference, field)
        for field in ("params", "states", "charge", "fire", "reset", "threshold", "kernel"))


@cache
def _imported_models() -> dict:
    """nir_models.snn's models as the checker makes them (no units in them: dt is moot)."""
    from snnc.check.models import model_of
    from snnc.check.neurons import check_neuron
    from snnc.frontend.parser import parse_text
    from snnc.interchange.nir_import import MODELS_FILE
    parsed = parse_text(MODELS_FILE.read_text(encoding="utf-8"), str(MODELS_FILE))
    for defn in parsed.neurons:
        check_neuron(defn)
    return {defn.name: model_of(defn, 1.0) for defn in parsed.neurons}


def check_population(pop: Population, incoming: list[Projection]) -> None:
    model = pop.model
    if imported(model):
        check_imported(pop, incoming)
        return
    if model.origin != STDLIB or model.name not in NEURON_MODELS:
        raise no_node(f"population '{pop.name}' runs neuron model {model.name}", pop.pos,
                      "NIR's neurons are snnc's IF, LIF and CubaLIF, and the models "
                      "`snnc import` writes (docs/NIR.md)")
    if pop.refractory:
        raise no_node(f"population '{pop.name}' has a refractory period", pop.pos)
    rest = {"v": pop.params["v_reset"], "c": 0.0}
    for name, value in pop.state_init.items():
        if not isinstance(value, int | float) or value != rest[name]:
            raise no_node(f"population '{pop.name}' starts with {name}_init = {value}", pop.pos,
                          f"NIR neurons start at rest ({name} = {rest[name]:g})")
    for key in ("c_decay", "v_decay"):
        if pop.params.get(key, 0.0) >= 1.0:
            raise no_node(f"population '{pop.name}' has {key} = {pop.params[key]:g}, a decay "
                          "with no finite time constant", pop.pos)
    synapses = {proj.synapse is not None for proj in incoming}
    if model.name == "LIF" and synapses == {True, False}:
        raise no_node(f"population '{pop.name}' takes connections with and without a "
                      "synapse", pop.pos, "NIR's CubaLIF filters all of its input")
    decays = {exp_current_decay(proj) for proj in incoming if proj.synapse is not None
              and proj.synapse.kind == "exp_current"}
    if len(decays) > 1:
        raise no_node(f"population '{pop.name}' takes exp_current synapses with different "
                      "time constants", pop.pos, "NIR's CubaLIF has one tau_syn")


def check_imported(pop: Population, incoming: list[Projection]) -> None:
    """A population of an imported model exports as its NIR node: no refractory period,
    its states from rest (v_leak, or v_reset for IF, 0 for I), no synapse on its inputs."""
    if pop.refractory:
        raise no_node(f"population '{pop.name}' has a refractory period", pop.pos)
    p = pop.params
    rest = {"i": 0.0, "v": p.get("v_leak", p.get("v_reset", 0.0))}
    for name, value in pop.state_init.items():
        if not isinstance(value, int | float) or value != rest[name]:
            raise no_node(f"population '{pop.name}' starts with {name}_init = {value}", pop.pos,
                          f"NIR neurons start at rest ({name} = {rest[name]:g})")
    for proj in incoming:
        if proj.synapse is not None:
            raise no_node(f"connection '{proj.name}' goes via {proj.synapse.kind} into "
                          f"{pop.model.name}", proj.pos,
                          "an imported model's node filters its input itself")


def check_projection(proj: Projection, target) -> None:
    where = f"connection '{proj.name}'"
    if proj.rule is not None:
        raise no_node(f"{where} learns (`learn {proj.rule.kind}`): plasticity", proj.pos,
                      "NIR holds fixed weights; export the network without `learn`")
    if proj.synapse_delays is not None:
        low, high = proj.synapse_delays
        raise no_node(f"{where} has a delay per synapse ({low} to {high} steps)", proj.pos,
                      "NIR's Delay is one delay for every synapse of a connection")
    if proj.channel is not None:
        raise no_node(f"{where} delivers into state '{proj.channel}'", proj.pos)
    if proj.synapse is not None and not (proj.synapse.kind == "exp_current" and
                                         isinstance(target, Population)
                                         and target.model.name == "LIF"):
        raise no_node(f"{where} goes via {proj.synapse.kind} into {target.model.name}",
                      proj.pos, "only exp_current into a LIF is exported (as NIR's CubaLIF)")
    for op in proj.ops:
        if op.kind not in (*EXPORTED_OPS, *SKIPPED_OPS):
            raise no_node(f"{where} has op {op.kind}", op.pos)
        if op.kind == "avgpool" and len(op.in_shape) != 3:
            raise no_node(f"{where} pools over {list(op.in_shape)} with avgpool", op.pos,
                          "NIR pools [C, H, W] only (AvgPool2d)")


# ------------------------------------------------------------------ files
def export_file(path: str | Path, out: str | Path, network: str | None = None,
                weights: str | None = None, allowed=()) -> tuple[object, list[str]]:
    """Compile `path`, export one network (with the tensors of `weights`, else of a module
    built as snnc builds it) and write `out` atomically; (the graph, the warnings)."""
    from snnc.compiler import analyse, sources_shown
    from snnc.writer import check_targets, write_atomically_with
    nir = nir_module()
    program, graphs = analyse(path, network, allowed)
    if len(graphs) != 1:
        raise SnnError(f"{path} defines {len(graphs) or 'no'} networks",
                       hint="choose one with --network NAME" if graphs
                       else "add `network NAME { ... }`")
    (target,) = check_targets([Path(out)], [Path(name) for name in program.sources])
    with sources_shown(program):
        plan = lower(graphs[0])
        check_exportable(plan)  # before building a module
        state = state_of(program, graphs[0], plan, weights)
        graph, warnings = export_nir(plan, state)
    write_atomically_with(target, nir_writer(nir, graph))
    return graph, warnings


def state_of(program, graph, plan: Plan, weights: str | None) -> dict[str, torch.Tensor]:
    """The tensors of `weights` (refused unless they fit the plan's layout, read without
    running code), else the state_dict of the softbp module snnc builds."""
    from snnc.codegen import check_weights
    from snnc.compiler import compile_graph
    if weights is None:
        return compile_graph(program, graph, "softbp")().state_dict()
    return check_weights(replace(plan, weights=Weights(weights, None)))


def nir_writer(nir, graph) -> Callable[[io.BufferedWriter], None]:
    """Writes the graph's HDF5 bytes into a file (nir.write into memory first: h5py
    wants to seek and read back what it writes)."""
    def write(file) -> None:
        buffer = io.BytesIO()
        nir.write(buffer, graph)
        file.write(buffer.getvalue())
    return write
