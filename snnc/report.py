"""`snnc inspect`: the graph as a table (text), node-link data (json) or Graphviz (dot)."""
from __future__ import annotations

import dataclasses
import io
import json

import networkx as nx
from rich.console import Console
from rich.table import Table

from snnc.errors import printable
from snnc.ir import expr as ex
from snnc.ir.graph import connections, populations
from snnc.ir.nodes import Connection, Model, Population
from snnc.ir.values import Normal, Spec, Symbol, Uniform, describe_init
from snnc.passes.fold import fold
from snnc.plan.lower import lower
from snnc.printers import to_snn

FORMATS = ("text", "json", "dot", "plan")


def shape_text(shape) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def totals(graph: nx.MultiDiGraph) -> dict[str, int]:
    pops = populations(graph)
    conns = connections(graph)
    return {
        "populations": len(pops),
        "connections": len(conns),
        "neurons": sum(p.size for p in pops),
        "synapses": sum(c.synapse_count() for c in conns),
        "parameters": sum(p.parameter_count() for p in pops)
                      + sum(c.parameter_count() for c in conns),
        "state_bytes_per_step": sum(p.state_bytes() for p in pops)
                                + sum(c.state_bytes() for c in conns),
    }


def render(graph: nx.MultiDiGraph, fmt: str) -> str:
    return {"text": render_text, "json": render_json, "dot": render_dot,
            "plan": render_plan}[fmt](graph)


def render_all(graphs: list[nx.MultiDiGraph], fmt: str) -> str:
    """Every network of a file: text and dot one after the other; json one document (the
    network's object, or an array of them when the file has several)."""
    if fmt == "json" and len(graphs) != 1:
        return json.dumps([json_data(g) for g in graphs], indent=2) + "\n"
    return "\n".join(render(g, fmt) for g in graphs)


# ------------------------------------------------------------------ text
def _spec(spec: Spec | None) -> str:
    if spec is None:
        return "-"
    args = ", ".join(f"{k} = {_value(v)}" for k, v in spec.params.items() if v is not None)
    return f"{spec.kind}({args})" if args else spec.kind


def _value(v) -> str:
    if isinstance(v, Spec):
        return _spec(v)
    if isinstance(v, Symbol):
        return v.name
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (Uniform, Normal)) or isinstance(v, (int, float)):
        return describe_init(v)
    return str(v)


def _ops(conn: Connection) -> str:
    if not conn.ops:
        return "identity"
    return " | ".join(f"{_spec(Spec(op.kind, op.params))} -> {shape_text(op.out_shape)}"
                      for op in conn.ops)


def _delay(conn: Connection) -> str:
    d = conn.delay
    return f"uniform({d.low:g}, {d.high:g})" if isinstance(d, Uniform) else str(d)


def _kib(n: int) -> str:
    return f"{n / 1024:,.1f} KiB" if n >= 1024 else f"{n} B"


def _console(out: io.StringIO) -> Console:
    # markup off: a file name such as `proj[/b].snn` is text, not a Rich style tag
    return Console(file=out, width=140, no_color=True, highlight=False, soft_wrap=False,
                   markup=False)


def render_text(graph: nx.MultiDiGraph) -> str:
    g = graph.graph
    out = io.StringIO()
    console = _console(out)
    console.print(f"network {g['name']}  ({printable(g['file'])})  dt = {g['dt_ms']:g} ms, "
                  f"steps = {g['steps']}, backend = {g['backend']}, "
                  f"seed = {g['seed'] if g['seed'] is not None else '-'}")
    nodes = Table(title="nodes", title_justify="left")
    for col in ("name", "kind", "shape", "model / encoder", "neurons", "params", "state / step"):
        nodes.add_column(col, justify="right" if col in ("neurons", "params", "state / step")
                         else "left")
    for name in g["schedule"]:
        node = graph.nodes[name]["node"]
        if isinstance(node, Population):
            nodes.add_row(name, "population", shape_text(node.shape), _model(node, g["dt_ms"]),
                          f"{node.size:,}", f"{node.parameter_count():,}",
                          _kib(node.state_bytes()))
        else:
            what = _spec(node.spec) if node.kind == "encoder" else "-"
            nodes.add_row(name, node.kind, shape_text(node.shape), what, "-", "0", "-")
    console.print(nodes)
    conns = connections(graph)
    if conns:
        table = Table(title="connections", title_justify="left")
        for col in ("name", "ops (output shape)", "delay", "via", "learn", "synapses", "params"):
            table.add_column(col, justify="right" if col in ("synapses", "params") else "left")
        for conn in conns:
            table.add_row(conn.name, _ops(conn), _delay(conn), _spec(conn.synapse),
                          _spec(conn.rule), f"{conn.synapse_count():,}",
                          f"{conn.parameter_count():,}")
        console.print(table)
    t = totals(graph)
    console.print(f"neurons {t['neurons']:,}  synapses {t['synapses']:,}  "
                  f"parameters {t['parameters']:,}  "
                  f"state memory per step {_kib(t['state_bytes_per_step'])} per sample")
    if g["monitors"]:
        console.print("monitors: " + ", ".join(m.key for m in g["monitors"]))
    if g["readout"]:
        r = g["readout"]
        console.print(f"readout: {r.target} = {_spec(r.spec)} -> {shape_text(r.out_shape)}")
    console.print("schedule: " + " -> ".join(g["schedule"]))
    return out.getvalue()


def _model(pop: Population, dt_ms: float) -> str:
    changed = {k: v for k, v in pop.params.items() if _differs_from_default(pop, k, v, dt_ms)}
    args = ", ".join(f"{k} = {_value(v)}" for k, v in changed.items())
    return f"{pop.model.name}({args})"


def _differs_from_default(pop: Population, key: str, value, dt_ms: float) -> bool:
    default = pop.model.default(key)
    if default is None:
        return False  # derived `param`s are shown with the equations, not here
    # Defaults may refer to other parameters (`v_rest = v_reset`): fold them.
    folded = fold(default, {**pop.params, "dt": dt_ms})
    return not isinstance(folded, ex.LITERALS) or folded.value != value


# ------------------------------------------------------------------ plan
def render_plan(graph: nx.MultiDiGraph) -> str:
    """The plan every backend renders (snnc.plan): run mode, order, projections, synapse
    equations and the parameter/buffer layout."""
    plan = lower(graph)
    out = io.StringIO()
    console = _console(out)
    console.print(f"plan {plan.name}  mode = {plan.mode}  order: {' -> '.join(plan.order)}")
    if plan.projections:
        table = Table(title="projections", title_justify="left")
        for col in ("name", "from -> to", "ops", "weighted op", "connectivity", "delay",
                    "per-synapse delays", "synapse", "rule"):
            table.add_column(col)
        for p in plan.projections:
            delays = f"+[0, {p.extra_delay}]" if p.synapse_delays else "-"
            table.add_row(p.name, f"{p.src} -> {p.dst}", " | ".join(o.kind for o in p.ops)
                          or "identity", "-" if p.weighted is None else str(p.weighted),
                          p.connectivity or "-", str(p.delay), delays,
                          _synapse_text(p.synapse), p.rule.kind if p.rule else "-")
        console.print(table)
    layout = Table(title="parameters and buffers (state_dict)", title_justify="left")
    for col in ("key", "shape", "kind"):
        layout.add_column(col)
    for t in plan.layout:
        layout.add_row(t.key, "drawn at build" if t.shape is None else shape_text(t.shape),
                       "parameter" if t.parameter else "buffer")
    console.print(layout)
    return out.getvalue()


def _synapse_text(step) -> str:
    if step is None:
        return "-"
    lines = [f"{a.target} = {to_snn(a.value)}" for a in step.update]
    return f"{step.kind}: " + "; ".join([*lines, f"-> {to_snn(step.output)}"])


# ------------------------------------------------------------------ json
def jsonable(obj):
    """IR values as plain JSON data; expressions become .snn text."""
    if isinstance(obj, Spec):
        return {"kind": obj.kind, "params": jsonable(dict(obj.params))}
    if isinstance(obj, Symbol):
        return obj.name
    if isinstance(obj, Uniform):
        return {"uniform": [obj.low, obj.high]}
    if isinstance(obj, Normal):
        return {"normal": [obj.mean, obj.std]}
    if isinstance(obj, Model):
        return {"name": obj.name, "origin": obj.origin, "states": list(obj.states)}
    if isinstance(obj, (ex.Number, ex.Bool, ex.Name, ex.Unary, ex.Binary, ex.Call)):
        return to_snn(obj)
    if isinstance(obj, ex.Assign):
        return f"{obj.target} = {to_snn(obj.value)}"
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)
                  if f.name != "pos"}
        return {k: jsonable(v) for k, v in fields.items()}
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return obj


def render_json(graph: nx.MultiDiGraph) -> str:
    return json.dumps(json_data(graph), indent=2) + "\n"


def json_data(graph: nx.MultiDiGraph) -> dict:
    data = nx.node_link_data(graph, edges="links")
    settings = {k: v for k, v in data["graph"].items() if k != "pos"}
    data["graph"] = {**jsonable(settings), "totals": totals(graph)}
    return jsonable(data)


# ------------------------------------------------------------------ dot
def render_dot(graph: nx.MultiDiGraph) -> str:
    lines = [f'digraph "{graph.graph["name"]}" {{', "  rankdir=LR;",
             '  node [fontname="Helvetica"]; edge [fontname="Helvetica", fontsize=10];']
    for name in graph.graph["schedule"]:
        node = graph.nodes[name]["node"]
        if isinstance(node, Population):
            label, shape = f"{name}\\n{pop_label(node)}", "ellipse"
        else:
            label, shape = f"{name}\\n{node.kind} {shape_text(node.shape)}", "box"
        lines.append(f'  "{name}" [shape={shape}, label="{label}"];')
    for conn in connections(graph):
        parts = [" | ".join(op.kind for op in conn.ops) or "identity"]
        if conn.max_delay:
            parts.append(f"delay {_delay(conn)}")
        if conn.synapse:
            parts.append(f"via {conn.synapse.kind}")
        if conn.rule:
            parts.append(f"learn {conn.rule.kind}")
        style = ", style=dashed" if conn.max_delay else ""
        label = "\\n".join(parts)
        lines.append(f'  "{conn.src}" -> "{conn.dst}" [label="{label}"{style}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def pop_label(pop: Population) -> str:
    return f"{pop.model.name} {shape_text(pop.shape)}"
