"""The whole-pipeline fuzzer's worker: each case is checked, built, compiled, instantiated
and run one forward, in a child process with bounded memory and time.

tests/test_fuzz_pipeline.py runs this file (its name does not match test_*.py, so pytest
does not collect it) as

    python tests/fuzz_pipeline_worker.py --area DIR --seed S --start I --stop J

and reads the JSON lines it appends to DIR/results.jsonl: one `start` line before each
case and one `done` line after it, so that when the process dies (a crash in C code, the
memory limit reached outside Python) the parent knows which case killed it and starts a
new worker after it. A case is a pure function of (seed, index), so any process can
regenerate it; the failing inputs travel in the `done` lines as well.

A case is a `.snn` file (with the files it imports) written to a fresh folder:
  - the corpus seeds of fuzz_corpus.py (samples, stdlib, embedded), mutated at the token
    and byte level with the front-end fuzzer's mutations, or unmutated;
  - networks written by `NetworkWriter`: random but mostly valid, so that most cases get
    past the checks into code generation and the runtime: stdlib and generated neuron
    models, op pipelines whose shapes agree, delays, synapses, plasticity, monitors,
    readouts, and hostile names (nn.Module attributes, Python keywords, the generated
    module's own locals) where the language allows a name;
  - those networks mutated again;
  - special files: a symbolic link to /dev/zero, a sparse 6 GiB file, a FIFO, a folder.

Each case runs `snnc.compile` -> `Net()` -> one forward on [T, B, *shape] inputs (T 2-3,
B 1-2; input-free networks run 3 steps at most), sometimes a backward, sometimes the same
forward on the fused kernels compared with the reference step (shapes, dtypes, whether a
gradient flows, values), and sometimes `snnc build` (to a file, a folder or the default
output) followed by importing and running the module it wrote, and `snnc inspect` in its
three formats. The only outcomes allowed are success and an `SnnError` at build time;
every other exception, a timeout, a change outside the case's folder, an input file that
changed, code from the input that ran, a message that a UTF-8 terminal cannot print or
that carries raw control characters, a written module whose mode ignores the umask or that
lacks snnc.compile's class, and `inspect --format json` printing other than one JSON
document are failures of that case.

Replay one file with `--file NET.snn` (add --fused, --build FILE|DIR|DEFAULT, --backward)
and read the outcome in --area's results.jsonl.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import math
import os
import random
import re
import resource
import shutil
import signal
import stat
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import fuzz_corpus as corpus

# ---------------------------------------------------------------------------------------
# Bounds and rates.

MEMORY_LIMIT = 4 * 2**30     # RLIMIT_AS of the worker: torch needs ~1 GiB of address space
SNNC_MAX_MEMORY = "256M"     # snnc's own build-time bound (refuses larger networks)
CASE_SECONDS = 20            # a case of this fuzzer builds in well under a second
# C kernels cost ~0.3 s per new population step to compile; more with SNNC_FUZZ_FUSED_RATE
FUSED_RATE = float(os.environ.get("SNNC_FUZZ_FUSED_RATE", "0.05"))
BUILD_RATE = 0.25            # `snnc build` + importing the module it wrote
BACKWARD_RATE = 0.3
MAX_SHOWN = 20_000           # characters of each input file kept in a failure record
PWNED = "snnc-fuzz-pwned"    # the file a code-injection payload creates in the cwd

# ---------------------------------------------------------------------------------------
# Names. Node, model and parameter names are identifiers, so what a hostile name can do
# is collide: with Python's keywords and builtins, nn.Module's attributes, the generated
# module's locals and helpers, other nodes' generated locals (`h` and `s_h`), C's
# keywords and the kernels' own identifiers.

PLAIN_NAMES = ["a", "b", "c1", "hidden", "out", "exc", "inh", "pop", "layer2", "p_0", "Q"]
HOSTILE_NAMES = [
    "forward", "train", "eval", "state_dict", "load_state_dict", "parameters", "modules",
    "children", "buffers", "cuda", "to", "float", "double", "half", "type", "apply",
    "zero_grad", "register_buffer", "training", "_modules", "_parameters", "_buffers",
    "__init__", "__class__", "__dict__", "__call__", "__getattr__", "__module__", "__doc__",
    "self", "self_", "h", "s_h", "s_a", "like", "steps", "batch", "batch_size", "t", "sent",
    "torch", "rt", "nn", "x", "v", "spike", "fired", "out", "state", "states", "seed",
    "monitors", "populations", "encoders", "connections", "connection", "reset",
    "sequence", "input_shapes", "record", "recorded", "step", "super", "print", "len",
    "range", "int", "object", "None", "True", "False", "class", "def", "lambda", "return",
    "pass", "yield", "import_", "from", "global", "nonlocal", "del", "try", "except",
    "finally", "raise", "with", "while", "for", "in", "is", "elif", "else", "assert",
    "async", "await", "break", "continue", "real", "double", "auto", "static", "struct",
    "const", "goto", "sizeof", "typedef", "extern", "inline", "restrict", "main", "N",
    "T", "X", "n0", "nb", "i", "k", "BLOCK", "SLOTS", "CHARGE", "FIRE", "RESET", "REAL",
    "LOAD_PARAMS", "exp", "log", "sqrt", "_", "__", "snnc", "KERNEL_a", "step_a",
]
NETWORK_NAMES = ["n", "net", "my_net", "MyNet", "my__net", "mnist", "Net2", "None", "True",
                 "forward", "self", "class", "def", "rt", "nn", "torch", "Network",
                 "Population", "Module", "object", "type", "print", "super", "_", "__",
                 "__init__", "snnc_generated", "n" * 200]
# File names: mostly plain; else names that once became code in the generated header, Rich
# markup, terminal escapes, undecodable bytes, a source named like its own output.
PAYLOAD = f"open('{PWNED}', 'w').close()"
FILE_NAMES = [f"x\n{PAYLOAD}\n#.snn", f"x\r{PAYLOAD}\r#.snn", f"x\u2028{PAYLOAD}\u2028#.snn",
              f"x\x0c\n{PAYLOAD}\n#.snn", f"x\x85{PAYLOAD}\x85#.snn",
              f'q"""; {PAYLOAD}; """.snn', f"q'''; {PAYLOAD}; '''.snn", "proj[/b].snn",
              "[bold red]x[/].snn", "\x1b[31mred\x1b[0m.snn", "\x1b]0;title\x07.snn",
              os.fsdecode(b"\xff\xfe.snn"), "r\u00e9seau \u00e9.snn", "model.py", "net",
              "net.snn.py", " lead space.snn", "-dash.snn", "a" * 200 + ".snn", "$(id).snn",
              "`id`.snn", "%s%n.snn", "{x}.snn", "\\.snn", "\u202eevil.snn"]
LIB_NAMES = ["lib\x1b[2J.snn", "lib[/b].snn", "lib{0}.snn", "lib \u00e9.snn", "lib'.snn"]

# ---------------------------------------------------------------------------------------
# The stdlib's models, as the generator needs them: states, and a value for each
# parameter (Tempotron runs only on the event backend: a build error on softbp).

STDLIB_MODELS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "IF": (("v",), ("v_threshold", "v_reset")),
    "LIF": (("v",), ("tau", "v_threshold", "v_reset", "v_rest", "decay_input")),
    "PLIF": (("v",), ("init_tau", "v_threshold", "v_reset")),
    "RIF": (("v",), ("init_w", "v_threshold", "v_reset")),
    "CubaLIF": (("c", "v"), ("c_decay", "v_decay", "v_threshold", "v_reset")),
    "Izhikevich": (("v", "u"), ("a", "b", "c", "d", "v_threshold")),
    "ILCIF": (("v",), ("dec_pop_dim", "v_threshold", "v_reset")),
    "ILCLIF": (("v",), ("dec_pop_dim", "v_decay", "v_threshold", "v_reset")),
    "ILCCubaLIF": (("c", "v"), ("dec_pop_dim", "c_decay", "v_decay", "v_threshold",
                                "v_reset")),
    "SFIF": (("v", "due", "out"), ("r", "v_threshold", "v_reset")),
    "SFLIF": (("v", "due", "out"), ("r", "tau", "v_threshold", "v_reset")),
    "Tempotron": (("v",), ("tau", "tau_s", "v_threshold", "v_reset")),
}
LIB_MODELS = {"QIF": (("v",), ("v_threshold", "v_reset", "k")),
              "SoftLIF": (("v",), ("tau", "v_threshold"))}
# Values that are wrong for most parameters, or for the arithmetic behind them.
HOSTILE_VALUES = ["0", "-1", "1e30", "1e309", "-1e309", "5e-324", "20 Hz", "1 ms", "1e12",
                  "99999999999999999999999", "0.0000001", "true", "0.001", "1 us", "0.5"]
# Distributions that are wrong: reversed bounds, a negative spread, infinite moments.
HOSTILE_INITS = ["uniform(1, 0)", "normal(0, -1)", "uniform(-1e30, 1e30)", "normal(1e30, 1)",
                 "uniform(0, 0)", "normal(0, 0)", "uniform(1e309, 1)"]
# Model parameters named like what every population accepts besides (LANGUAGE.md §4.4).
COMMON_NAMES = ["surrogate", "refractory", "detach_reset", "reset", "v_init", "spikes"]


@dataclass
class Model:
    name: str
    states: tuple[str, ...]
    params: tuple[str, ...]
    has_v: bool = True


@dataclass
class Node:
    name: str
    shape: tuple[int, ...]
    kind: str                      # input | encoder | population
    model: Model | None = None


class NetworkWriter:
    """Writes random `.snn` programs that mostly pass the checks: shapes are computed
    along each op pipeline as snnc.check.shapes does, so the target population can take
    the shape the pipeline produces; hostile names and values come in at low rates."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        # Most programs are clean (they test codegen and the runtime), a few are all hostile
        # (they test the checks): each program makes some hundred choices.
        self.hostility = rng.choice((0.0, 0.0, 0.0, 0.01, 0.03, 0.1, 0.3))
        self.used: set[str] = set()
        self.pairs: set[tuple[str, str]] = set()  # (src, dst) joined: another needs `as`

    # ---- small choices
    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def hostile(self) -> bool:
        return self.chance(self.hostility)

    def fresh_name(self, plain: list[str] = PLAIN_NAMES) -> str:
        """A name not used yet in this network: plain, hostile, or `s_` + a used one."""
        for _ in range(20):
            if self.hostile():
                name = self.rng.choice(HOSTILE_NAMES)
            elif self.used and self.chance(0.05):
                name = "s_" + self.rng.choice(sorted(self.used))
            else:
                name = self.rng.choice(plain) + str(self.rng.randint(0, 99))
            if name not in self.used:
                self.used.add(name)
                return name
        name = f"node{len(self.used)}"
        self.used.add(name)
        return name

    def number(self, low: float = -2.0, high: float = 2.0) -> str:
        if self.hostile():
            return self.rng.choice(HOSTILE_VALUES)
        return self.rng.choice((f"{self.rng.uniform(low, high):.3g}",
                                str(self.rng.randint(int(low), int(high)))))

    def positive(self) -> str:
        if self.hostile():
            return self.rng.choice(HOSTILE_VALUES)
        return self.rng.choice(("1.5", "2.0", "3", "5", "10.0", "2 ms", "0.5 ms", "20"))

    def size(self, high: int = 6) -> int:
        return self.rng.randint(1, high)

    # ---- whole programs
    def program(self) -> tuple[str, dict[str, str]]:
        """(main file text, other files by name)."""
        files: dict[str, str] = {}
        header: list[str] = []
        models = [Model(name, *info) for name, info in STDLIB_MODELS.items()]
        if self.chance(0.2):
            header.append('import "lib.snn"')
            models += [Model(name, *info) for name, info in LIB_MODELS.items()]
        own = [self.neuron() for _ in range(self.rng.choice((0, 0, 1, 1, 2, 3)))]
        if own and self.chance(0.25):
            lib = self.rng.choice(LIB_NAMES) if self.hostile() else "models.snn"
            files[lib] = "\n".join(text for _, text in own) + "\n"
            header.append(f'import "{lib}"')
        else:
            header += [text for _, text in own]
        models += [model for model, _ in own]
        networks = [self.network(self.network_name(i), models)
                    for i in range(self.rng.choice((1, 1, 1, 1, 2, 3)))]
        return "\n".join(header + networks) + "\n", files

    def network_name(self, i: int) -> str:
        if self.hostile() or (i > 0 and self.chance(0.3)):
            return self.rng.choice(NETWORK_NAMES)
        return self.rng.choice(("n", "net", "small", "mnist_mlp", "Deep")) + str(i)

    # ---- neuron models
    def neuron(self) -> tuple[Model, str]:
        """A user model: (what the generator needs to know of it, its definition)."""
        name = self.model_name()
        params = self.model_params()
        states = self.model_states(params)
        derived = [self.rng.choice(HOSTILE_NAMES) if self.hostile() else f"d{i}"
                   for i in range(self.rng.choice((0, 0, 1, 2)))]
        derived = [d for d in dict.fromkeys(derived) if d not in (*params, "x", "dt", "t")]
        lines = [f"neuron {name}({', '.join(f'{p} = {self.param_default(p)}' for p in params)})"
                 " {"]
        known = list(params)
        for d in derived:
            learnable = " learnable" if self.chance(0.4) else ""
            lines.append(f"    param {d} = {self.expr(known, 2)}{learnable}")
            known.append(d)
        for s in states:
            lines.append(f"    state {s} = {self.rng.choice(('0', 'v_reset', '0.1', '-1'))}"
                         if "v_reset" in params else f"    state {s} = 0")
        lines.append(f"    charge {self.charge(states, known)}")
        fire = self.fire(states, known)
        lines.append(f"    fire {fire}")
        # NAME >= EXPR, the form `reset hard` and `soft` read (NAME should be a state)
        simple = re.fullmatch(r"\w+ >=? [^<>=!]*", fire) is not None
        reset = self.reset(states, params, simple)
        if reset:
            lines.append(f"    {reset}")
        lines.append("}")
        return Model(name, tuple(states), tuple(params), "v" in states), "\n".join(lines)

    def model_name(self) -> str:
        name = self.rng.choice(("My", "Adapt", "Q", "Leaky", "Zoo")) + str(self.rng.randint(0, 999))
        if self.hostile():
            name = self.rng.choice(("forward", "Network", "Population", "torch", "rt", "LIF",
                                    "self", "None", "step", "Module", "real", "spike"))
        return name

    def model_params(self) -> list[str]:
        params = ["v_threshold", "v_reset"] if self.chance(0.85) else []
        params += self.rng.sample(["tau", "tau_a", "beta", "gain", "k", "th", "leak"],
                                  self.rng.randint(0, 3))
        if self.hostile():
            params.append(self.rng.choice(HOSTILE_NAMES + COMMON_NAMES))
        return list(dict.fromkeys(p for p in params if p not in ("x", "dt", "t")))

    def model_states(self, params: list[str]) -> list[str]:
        states = ["v"] if self.chance(0.85) else []
        states += self.rng.sample(["u", "c", "a", "r", "w2"], self.rng.randint(0, 2))
        if self.hostile():
            states.append(self.rng.choice(HOSTILE_NAMES + COMMON_NAMES))
        return list(dict.fromkeys(s for s in states
                                  if s not in params and s not in ("x", "dt", "t"))) or ["v"]

    def charge(self, states: list[str], known: list[str]) -> str:
        """One update per state (in a random order), sometimes a second one, and for a few
        hostile models a long chain of them (substitution once grew exponentially)."""
        dynamic = known + states + ["x", "dt"]
        assigns = [f"{s} = {self.expr(dynamic, self.rng.randint(1, 3), grows=s)}"
                   for s in self.rng.sample(states, len(states))]
        if self.chance(0.2):
            assigns.append(f"{states[0]} = {self.expr(dynamic, 2)}")
        if self.hostile() and self.chance(0.2):
            s0 = states[0]
            assigns += [f"{s0} = {s0} * {s0} + {s0}"] * self.rng.choice((8, 14, 30))
        return assigns[0] if len(assigns) == 1 else "{ " + "; ".join(assigns) + " }"

    def param_default(self, name: str) -> str:
        if name.startswith("tau"):
            return self.positive()
        if name == "v_threshold":
            return self.rng.choice(("1.0", "0.5", "1", "30"))
        return self.number(-1, 2)

    def fire(self, states: list[str], known: list[str]) -> str:
        first = states[0]
        roll = self.rng.random()
        if roll < 0.55 and "v_threshold" in known:
            return f"{first} {self.rng.choice(('>=', '>'))} v_threshold"
        if roll < 0.7:
            return f"{first} >= {self.expr(known, 2)}"
        if roll < 0.8:
            return f"{first} >= 1 {self.rng.choice(('and', 'or'))} {self.condition(states)}"
        if roll < 0.9:  # the input current, not a state, against a threshold
            return f"x {self.rng.choice(('>=', '>'))} {self.number(0, 1)}"
        return f"{self.rng.choice(known or ['1'])} > 0"  # a side that is constant

    def reset(self, states: list[str], params: list[str], simple: bool) -> str | None:
        """`simple`: fire reads `STATE >= THRESHOLD`, which `reset hard` and `soft` need."""
        roll = self.rng.random()
        if roll < 0.4 and "v_reset" in params and (simple or self.hostile()):
            return "reset hard"
        if roll < 0.55 and (simple or self.hostile()):
            return "reset soft"
        if roll < 0.65:
            return "reset none"
        if roll < 0.9:
            target = self.rng.choice(states)
            value = "v_reset" if "v_reset" in params else self.number()
            return f"reset {{ {target} = {value} }}"
        return None

    def condition(self, names: list[str]) -> str:
        left = self.rng.choice(names) if names else self.number()
        cond = f"{left} {self.rng.choice(('>=', '<=', '>', '<', '==', '!='))} {self.number()}"
        if self.chance(0.2):
            cond = f"not ({cond})"
        if self.chance(0.2):
            cond = f"{cond} {self.rng.choice(('and', 'or'))} {self.condition(names)}"
        return cond

    def deep(self, names: list[str]) -> str:
        """Expressions that once blew up in the sympy printers or the recursion limit."""
        leaf = self.rng.choice(names) if names else "1"
        n = self.rng.choice((10, 40, 60))
        return self.rng.choice((
            "sigmoid(" * n + leaf + ")" * n, "tanh(" * n + leaf + ")" * n,
            " ** ".join([leaf] * (n // 4)), " + ".join([leaf] * (n * 25)),
            f"abs({leaf})", f"{leaf} * ({leaf} > 0)", f"if({leaf} > 0 and {leaf} < 1, 1, 0)",
            f"{leaf} / 0", " * ".join(["99999"] * 8)))

    def expr(self, names: list[str], depth: int, grows: str | None = None) -> str:
        """A random expression of the model language (LANGUAGE.md §5) over `names`;
        `grows`: a state that should appear, so updates usually read their own state."""
        if depth <= 0 or self.chance(0.2):
            if grows and self.chance(0.6):
                return grows
            if self.hostile():
                if self.chance(0.3):
                    return self.deep(names)
                return self.rng.choice(("1e309", "exp(1000)", "log(-1)", "(-8) ** (1 / 3)",
                                        "x / 0", "0 / 0", "sqrt(-1)", "1e308 * 10",
                                        "(v > 0)", "99999999999999999999 * 99999999999"))
            return self.rng.choice(names + [self.number()]) if names else self.number()
        roll = self.rng.random()
        sub = depth - 1
        if roll < 0.5:
            op = self.rng.choice(("+", "+", "-", "*", "*", "/"))
            return f"{self.expr(names, sub, grows)} {op} {self.expr(names, sub)}"
        if roll < 0.55:
            return f"({self.expr(names, sub, grows)}) ** {self.rng.choice(('2', '0.5', '3'))}"
        if roll < 0.6:
            return f"-({self.expr(names, sub, grows)})"
        if roll < 0.85:
            func = self.rng.choice(("exp", "log", "sqrt", "tanh", "sigmoid", "abs"))
            inner = self.expr(names, sub, grows)
            if func in ("exp",):
                inner = f"-abs({inner})"  # keep most values finite
            if func in ("log", "sqrt"):
                inner = f"abs({inner}) + 1"
            return f"{func}({inner})"
        if roll < 0.87:
            func = self.rng.choice(("min", "max"))
            return f"{func}({self.expr(names, sub, grows)}, {self.expr(names, sub)})"
        if roll < 0.9:  # a comparison used as a value
            return f"{self.expr(names, sub, grows)} * ({self.condition(names)})"
        if roll < 0.95:
            return (f"clamp({self.expr(names, sub, grows)}, {self.number(-3, -1)}, "
                    f"{self.number(1, 3)})")
        return (f"if({self.condition(names)}, {self.expr(names, sub, grows)}, "
                f"{self.expr(names, sub)})")

    # ---- networks
    def network(self, name: str, models: list[Model]) -> str:
        self.used, self.pairs = set(), set()
        lines = self.settings()
        sources: list[Node] = []
        for _ in range(self.rng.choice((0, 1, 1, 1, 2, 2, 3))):
            node = Node(self.fresh_name(), self.shape(), "input")
            lines.append(f"input {node.name}{list(node.shape)}")
            sources.append(node)
        lines += self.encoders(sources)
        pops: list[Node] = []
        for _ in range(self.rng.randint(1, 4)):
            lines += self.population(sources, pops, models)
        for _ in range(self.rng.choice((0, 0, 1, 2, 3))):
            lines += self.extra_connection(sources, pops)
        lines += self.monitors(sources, pops)
        lines += self.readout(pops)
        if self.chance(0.02):
            lines += self.oversized()
        elif self.chance(0.01):
            lines += self.large()
        body = "\n    ".join(lines)
        return f"network {name} {{\n    {body}\n}}\n"

    def settings(self) -> list[str]:
        lines = []
        if self.chance(0.3):
            lines.append(f"dt = {self.rng.choice(('0.5 ms', '1 ms', '0.1 ms', '1', '2 ms'))}")
        if self.chance(0.5):
            steps = self.rng.choice(("1e30", "1e12", "0")) if self.hostile() \
                else str(self.rng.randint(1, 5))
            lines.append(f"steps = {steps}")
        if self.chance(0.06):  # only softbp exists yet
            lines.append(f"backend = {self.rng.choice(('softbp', 'softbp', 'clock', 'event'))}")
        if self.chance(0.5):
            seed = self.rng.choice(("1e30", str(2**63), "-1")) if self.hostile() \
                else str(self.rng.randint(0, 1000))
            lines.append(f"seed = {seed}")
        return lines

    def shape(self) -> tuple[int, ...]:
        rank = self.rng.choice((1, 1, 1, 1, 2, 2, 3, 3, 4))
        return tuple(self.size(5 if rank > 1 else 8) for _ in range(rank))

    def encoders(self, sources: list[Node]) -> list[str]:
        lines = []
        for src in [s for s in sources if s.kind == "input"]:
            if not self.chance(0.6):
                continue
            name = self.fresh_name()
            # softbp does not run gaussian_tuning yet: rare, so that most cases build
            kind = self.rng.choice(("poisson", "constant", "latency", "periodic") * 4
                                   + ("gaussian_tuning",))
            shape = src.shape
            if kind == "latency":
                call = (f"latency({src.name}, t_max = {self.positive()}, "
                        f"mode = {self.rng.choice(('linear', 'log'))})")
            elif kind == "gaussian_tuning":
                m = self.size(3)
                call = f"gaussian_tuning({src.name}, m = {m}, x_min = 0, x_max = 1, t_max = 4)"
                shape = (*shape, m)
            elif kind == "periodic" and len(shape) >= 2:
                call = f"periodic({src.name})"
                shape = shape[1:]
            else:
                call = f"{kind if kind != 'periodic' else 'poisson'}({src.name})"
            sources.append(Node(name, shape, "encoder"))
            lines.append(f"encoder {name} = {call}")
        if not sources or self.chance(0.15):
            node = Node(self.fresh_name(), (self.size(8),), "encoder")
            rate = self.rng.choice(("15 Hz", "0.2", "100 Hz", "1 kHz"))
            lines.append(f"encoder {node.name}[{node.shape[0]}] = poisson(rate = {rate})")
            sources.append(node)
        return lines

    def population(self, sources: list[Node], pops: list[Node], models: list[Model]
                   ) -> list[str]:
        """A population fed by a pipeline from an earlier node; it takes the shape the
        pipeline ends in (sometimes a population without input)."""
        lines = []
        src = self.rng.choice(sources[-3:] + pops[-2:]) if sources or pops else None
        ops, shape = self.pipeline(src.shape) if src else ([], (self.size(8),))
        model = self.rng.choice(models)
        if model.name == "Tempotron" and not self.chance(0.2):
            model = models[1]  # event only: keep it rare
        node = Node(self.fresh_name(), shape, "population", model)
        lines.append(f"population {node.name}{list(shape)} = {self.model_call(model, shape)}")
        if src:
            lines.append(self.connect(src, node, ops, recurrent=False))
        pops.append(node)
        sources.append(node)
        return lines

    def model_call(self, model: Model, shape: tuple[int, ...]) -> str:
        args = []
        for p in model.params:
            if not self.chance(0.3):
                continue
            if p == "dec_pop_dim":
                value = self.rng.choice([d for d in range(1, shape[-1] + 1) if shape[-1] % d == 0])
                args.append(f"{p} = {value}")
            elif p == "decay_input":
                args.append(f"{p} = {self.rng.choice(('true', 'false'))}")
            elif p == "init_tau":  # -log(init_tau - 1): wrong at 1 and below
                args.append(f"{p} = {self.rng.choice(('2.0', '1.5', '1', '0.5', '1e30'))}"
                            if self.hostile() else f"{p} = 2.0")
            elif p.startswith("tau"):
                args.append(f"{p} = {self.positive()}")
            else:
                args.append(f"{p} = {self.number(-1, 2)}")
        if self.chance(0.3):
            args.append(f"surrogate = {self.surrogate()}")
        if self.chance(0.15):
            args.append(f"detach_reset = {self.rng.choice(('true', 'false'))}")
        if self.chance(0.15):
            args.append(f"refractory = {self.rng.choice(('1', '2', '1 ms', '0'))}")
        if self.chance(0.1):
            args.append(f"reset = {self.rng.choice(('hard', 'soft', 'none'))}")
        for s in model.states:
            if self.chance(0.15):
                init = self.rng.choice(HOSTILE_INITS) if self.hostile() else \
                    self.rng.choice(("0.5", "uniform(0, 1)", "normal(0, 0.1)", "-1"))
                args.append(f"{s}_init = {init}")
        return f"{model.name}({', '.join(args)})" if args or self.chance(0.5) else model.name

    def surrogate(self) -> str:
        return self.rng.choice(("sigmoid(alpha = 4.0)", "atan(alpha = 2.0)", "sigmoid",
                                "piecewise(a = 1.0, b = 0.01, c = 0.5)",
                                "sign_swish(beta = 5.0)", "rect(width = 1.0)", "atan"))

    def pipeline(self, shape: tuple[int, ...]) -> tuple[list[str], tuple[int, ...]]:
        """Ops from `shape`, and the shape they end in. Sizes are chosen here; all sizing
        ops but the last one say theirs (`out = N`), as snnc requires."""
        steps: list[tuple[str, str, bool]] = []  # (kind, text without out, sizing)
        for _ in range(self.rng.choice((0, 1, 1, 1, 2, 2, 3))):
            step = self.op(shape)
            if step is None:
                break
            kind, args, shape, out = step
            steps.append((kind, args, out))
        sizing = [i for i, (_, _, out) in enumerate(steps) if out is not None]
        texts = []
        for i, (kind, args, out) in enumerate(steps):
            if out is not None and (i != sizing[-1] or self.chance(0.2)):
                args = [*args, f"out = {out}"]
            texts.append(f"{kind}({', '.join(args)})" if args else kind)
        return texts, shape

    def op(self, s: tuple[int, ...]):
        """(kind, args, shape after, size it sets or None), one op that fits shape `s`,
        or None when the one drawn does not fit."""
        choices = ["dense", "dense", "sparse", "one_to_one", "scale", "noise", "dropout",
                   "batchnorm"]
        if len(s) == 2:
            choices += ["conv1d", "conv1d", "maxpool", "avgpool", "channel_maxpool", "flatten"]
        if len(s) == 3:
            choices += ["conv2d", "conv2d", "maxpool", "avgpool", "channel_maxpool", "flatten"]
        if len(s) >= 2:
            choices += ["flatten", "dct", "axat"]
        kind = self.rng.choice(choices)
        if kind in ("dense", "sparse"):
            return self.weighted_op(kind, s)
        if kind in ("conv1d", "conv2d"):
            return self.conv_op(kind, s)
        if kind in ("maxpool", "avgpool", "channel_maxpool"):
            return self.pool_op(kind, s)
        if kind in ("flatten", "dct", "axat"):
            return self.reshaping_op(kind, s)
        return kind, self.same_shape_args(kind), s, None

    def weighted_op(self, kind: str, s: tuple[int, ...]):
        out = self.size(8)
        args = [f"w = {self.weight()}"] if self.chance(0.3) else []
        if kind == "dense" and self.chance(0.3):
            args.append(f"bias = {self.rng.choice(('true', 'false'))}")
        if kind == "sparse":
            args.append(f"p = {self.rng.choice(('0.5', '0.1', '1', '0'))}")
        return kind, args, (*s[:-1], out), out

    def conv_op(self, kind: str, s: tuple[int, ...]):
        k = self.rng.randint(1, 3)
        pad = self.rng.randint(0, 1)
        stride = self.rng.randint(1, 2)
        if any((d + 2 * pad - k) // stride + 1 < 1 for d in s[1:]):
            return None
        out = self.size(4)
        args = [f"k = {k}", f"stride = {stride}", f"pad = {pad}"]
        if self.chance(0.3):
            args.append(f"bias = {self.rng.choice(('true', 'false'))}")
        shape = (out, *((d + 2 * pad - k) // stride + 1 for d in s[1:]))
        if self.hostile():  # refused, or at least not allocated
            args = [self.rng.choice(("stride = 1e30", "pad = 100000", "k = 100000",
                                     "stride = 0", "k = 0.5", "pad = -1"))]
        return kind, args, shape, out

    def pool_op(self, kind: str, s: tuple[int, ...]):
        k = self.rng.randint(1, 2)
        if kind == "channel_maxpool":
            return (kind, [f"k = {k}"], (s[0] // k, *s[1:]), None) if s[0] >= k else None
        if min(s[1:]) < k:
            return None
        return kind, [str(k)], (s[0], *(d // k for d in s[1:])), None

    def reshaping_op(self, kind: str, s: tuple[int, ...]):
        if kind == "flatten":
            return kind, [], (math.prod(s),), None
        if kind == "dct":
            k = self.rng.choice([d for d in (1, 2, 3) if s[-1] % d == 0 and s[-2] % d == 0])
            return kind, [f"k = {k}"], s, None
        if s[-1] != s[-2]:  # axat: square matrices
            return None
        out = self.size(4)
        return kind, [], (*s[:-2], out, out), out

    def same_shape_args(self, kind: str) -> list[str]:
        if kind == "one_to_one":
            return [f"w = {self.weight()}"] if self.chance(0.5) else []
        if kind == "scale":
            return [f"c = {self.number()}"]
        if kind == "noise":
            return [f"std = {self.rng.choice(('0', '0.1'))}"]
        if kind == "dropout":
            return [f"p = {self.rng.choice(('0.2', '0', '0.5'))}"]
        return []  # batchnorm

    def weight(self) -> str:
        if self.hostile():
            return self.rng.choice(HOSTILE_INITS + HOSTILE_VALUES)
        return self.rng.choice(("uniform(-1, 1)", "normal(0, 0.5)", "0.5", "1", "-0.2",
                                "uniform(0, 0.1)"))

    def pipeline_to(self, src: tuple[int, ...], dst: tuple[int, ...]) -> list[str] | None:
        """Ops from `src` that end in `dst`, or None when the simple ways cannot."""
        if src == dst:
            return self.rng.choice(([], ["one_to_one"], ["scale(0.5)"], ["dense"]))
        if len(dst) == 1:
            return ["flatten", "dense"] if len(src) > 1 else ["dense"]
        if len(src) == len(dst) and src[:-1] == dst[:-1]:
            return ["dense"]
        if len(src) == len(dst) == 3 and src[1:] == dst[1:]:
            return ["conv2d(k = 3, pad = 1)"]
        return None

    def connect(self, src: Node, dst: Node, ops: list[str], recurrent: bool) -> str:
        text = f"connect {src.name} -> {dst.name}"
        if (src.name, dst.name) in self.pairs or self.chance(0.1):
            text += f" as {self.fresh_name()}"
        if ops:
            text += " : " + " | ".join(ops)
        if recurrent or self.chance(0.2):
            text += f" delay {self.delay(ops, recurrent)}"
        if self.chance(0.25):
            text += f" via {self.synapse()}"
        weighted = [op for op in ops if op.split("(")[0] in ("dense", "sparse", "one_to_one",
                                                               "conv1d", "conv2d")]
        self.pairs.add((src.name, dst.name))
        if len(weighted) == 1 and self.chance(0.01):  # softbp runs no plasticity yet
            text += (" learn stdp(tau_pre = 2, tau_post = 2, a_pre = 0.01, a_post = -0.01, "
                     f"f_w = {self.rng.choice(('additive', 'multiplicative', '1'))})")
        return text

    def delay(self, ops: list[str], recurrent: bool) -> str:
        """At least one step on a connection that closes a cycle (or, rarely, not)."""
        choices = ["1", "2", "3"] + (["0", "1 ms"] if self.hostile() or not recurrent else [])
        kinds = [op.split("(")[0] for op in ops]
        if kinds.count("dense") + kinds.count("sparse") + kinds.count("one_to_one") == 1 \
                or self.hostile():
            choices.append("uniform(1, 3)")  # per synapse
        return self.rng.choice(choices)

    def synapse(self) -> str:
        return self.rng.choice((
            f"exp_current(tau = {self.positive()})",
            f"spike_current(amplitude = {self.number()})",
            f"exp_decay_current(tau = {self.positive()}, amplitude = {self.number()})",
            "stp(v_base = 0.2, tau_f = 20, tau_d = 5)",
            f"filter(tau = {self.positive()}, learnable = {self.rng.choice(('true', 'false'))})",
        ))

    def extra_connection(self, sources: list[Node], pops: list[Node]) -> list[str]:
        """A second input into a population, forward or back (then with a delay)."""
        dst = self.rng.choice(pops)
        src = self.rng.choice(sources)
        ops = self.pipeline_to(src.shape, dst.shape)
        if ops is None:
            return []
        back = src.kind == "population" and pops.index(src) >= pops.index(dst)
        return [self.connect(src, dst, ops, recurrent=back)]

    def monitors(self, sources: list[Node], pops: list[Node]) -> list[str]:
        if not self.chance(0.3):
            return []
        probes = []
        for node in self.rng.sample(sources, min(len(sources), 3)):
            if node.kind == "input":
                continue
            variables = ["spikes"] + list(node.model.states if node.model else ())
            probes.append(f"{node.name}.{self.rng.choice(variables)}")
        return [f"monitor {', '.join(probes)}"] if probes else []

    def readout(self, pops: list[Node]) -> list[str]:
        if not self.chance(0.6):
            return []
        node = self.rng.choice(pops)
        kinds = ["rate", "count", "first_spike", "voting"]
        if node.model and node.model.has_v:
            kinds += ["v", "v_max"]
        kind = self.rng.choice(kinds)
        if kind == "voting":
            last = node.shape[-1]
            kind = f"voting({self.rng.choice([d for d in range(1, last + 1) if last % d == 0])})"
        return [f"readout {node.name} = {kind}"]

    def large(self) -> list[str]:
        """Sizes that SNNC_MAX_MEMORY = 256M lets through: the estimate must not be far
        below what the forward really takes (the worker's address space is 4 GiB)."""
        big = self.fresh_name()
        return self.rng.choice((
            [f"input {big}[4000]", f"population {big}_p[4000] = LIF",
             f"connect {big} -> {big}_p : dense"],
            [f"input {big}[16, 64, 64]", f"population {big}_p[16, 64, 64] = IF",
             f"connect {big} -> {big}_p : conv2d(k = 3, pad = 1) | batchnorm"],
            [f"input {big}[2000]", f"population {big}_p[2000] = IF",
             f"connect {big} -> {big}_p : sparse(p = 0.5) delay uniform(1, 3)"],
        ))

    def oversized(self) -> list[str]:
        """What snnc must refuse at build time (SNNC_MAX_MEMORY) before allocating it, or
        build in bounded time: many populations, many connections into one."""
        big = self.fresh_name()
        return self.rng.choice((
            [f"input {big}[100000]", f"population {big}_p[100000] = LIF",
             f"connect {big} -> {big}_p : dense"],
            [f"input {big}[1, 8, 8]", f"population {big}_p[1, 1, 1] = IF",
             f"connect {big} -> {big}_p : conv2d(pad = 100000) | maxpool(k = 200008)"],
            [f"input {big}[30000]", f"population {big}_p[30000] = LIF",
             f"connect {big} -> {big}_p : sparse(p = 1e-6)"],
            [f"encoder {big}[1000000] = poisson(rate = 0.1)", f"population {big}_p[1000] = IF",
             f"connect {big} -> {big}_p : dense"],
            [f"input {big}[1000]", f"population {big}_p[1000] = IF",
             f"connect {big} -> {big}_p : dense delay uniform(0, 100000)"],
            [f"input {big}[4]"] + [f"population {big}_{i}[4] = IF" for i in range(300)]
            + [f"connect {big} -> {big}_{i}" for i in range(300)],
            [f"input {big}[4]", f"population {big}_p[4] = IF"]
            + [f"connect {big} -> {big}_p as {big}_{i}" for i in range(500)],
        ))


# ---------------------------------------------------------------------------------------
# Cases: a pure function of (seed, index).

@dataclass
class Case:
    index: int
    kind: str                       # seed | mutated seed | generated | mutated generated | special
    origin: str                     # which seed, or which generator
    main: str                       # the main file's name in the case folder
    files: dict[str, bytes]         # relative path -> content, the main file included
    build: str | None = None        # None, or snnc build's output: FILE | DIR | DEFAULT
    fused: bool = False
    backward: bool = False
    special: str | None = None      # a special file (see SPECIALS)
    batch: int = 1
    steps: int = 2


SPECIALS = ("lib is /dev/zero", "main is sparse 6 GiB", "lib is a FIFO", "main is a folder")


def make_case(seed: int, index: int) -> Case:
    rng = random.Random(f"snnc-fuzz-pipeline/{seed}/{index}")
    seeds = corpus.SEEDS
    if index < len(seeds):  # each seed once as it is, first
        name, content, extras = seeds[index]
        case = Case(index, "seed", name, "net.snn", {"net.snn": content, **extras})
    else:
        case = _random_case(rng, index)
    case.files.setdefault("lib.snn", corpus.LIB.encode())
    case.build = rng.choice(("FILE", "FILE", "DIR", "DEFAULT")) if rng.random() < BUILD_RATE \
        else None
    case.fused = rng.random() < FUSED_RATE
    case.backward = rng.random() < BACKWARD_RATE
    case.batch, case.steps = rng.choice((1, 2)), rng.choice((2, 3))
    if rng.random() < 0.05:
        case.main = rng.choice(FILE_NAMES)
        case.files[case.main] = case.files.pop("net.snn")
        # the name reaches generated code and the default output's name through a build
        case.build = rng.choice(("FILE", "DEFAULT", "DEFAULT", None))
    return case


def _random_case(rng: random.Random, index: int) -> Case:
    draw = corpus.RandomDraw(rng)
    roll = rng.random()
    if roll < 0.01:
        return _special_case(rng, index)
    if roll < 0.55:
        text, extra = NetworkWriter(rng).program()
        files = {"net.snn": text.encode(), **{k: v.encode() for k, v in extra.items()}}
        if roll < 0.4:
            return Case(index, "generated", "NetworkWriter", "net.snn", files)
        tokens, names = corpus.tokens_and_names(text)
        # the parse-preserving edits, mostly: a syntax error tests only the parser
        mutated = "".join(corpus.mutate_tokens(draw, list(tokens), names))
        files["net.snn"] = mutated.encode("utf-8", errors="surrogatepass")
        return Case(index, "mutated generated", "NetworkWriter", "net.snn", files)
    which = rng.randrange(len(corpus.SEEDS))
    name, content, extras = corpus.SEEDS[which]
    return Case(index, "mutated seed", name, "net.snn",
                {"net.snn": _mutate_seed(draw, which, content), **extras})


def _mutate_seed(draw: corpus.RandomDraw, which: int, content: bytes) -> bytes:
    """The front-end fuzzer's four kinds of mutation (test_fuzz.py), token edits first."""
    tokens, names = corpus.seed_tokens(which)
    how = draw.sampled_from(("tokens", "tokens", "tokens", "bytes", "both", "splice"))
    if how == "bytes":
        return corpus.mutate_bytes(draw, content)
    tokens = list(tokens)
    if how == "splice":
        at = draw.integers(0, len(tokens))
        tokens[at:at] = [draw.sampled_from(corpus.HOSTILE_SNIPPETS)]
    else:
        tokens = corpus.mutate_tokens(draw, tokens, names)
    text = "".join(tokens).encode("utf-8", errors="surrogatepass")
    return corpus.mutate_bytes(draw, text) if how == "both" else text


def _special_case(rng: random.Random, index: int) -> Case:
    small = b'import "lib.snn"\nnetwork n { input a[2]; population p[2] = QIF; connect a -> p }\n'
    case = Case(index, "special", rng.choice(SPECIALS), "net.snn", {"net.snn": small})
    case.special = case.origin
    return case


# ---------------------------------------------------------------------------------------
# The folders of one worker, and what must not change outside the case's own folder.

@dataclass
class Area:
    root: Path        # the worker's own folder (under the test's temporary folder)

    @property
    def cases(self) -> Path:
        return self.root / "cases"

    @property
    def watched(self) -> list[Path]:
        """Folders no case may change: HOME, TMPDIR, the worker's starting cwd, the folder
        of the cases (but for the case's own), the repository's samples and stdlib."""
        return [self.root / "home", self.root / "tmp", self.root / "start", self.cases,
                corpus.SAMPLES_DIR, corpus.STDLIB.parent]

    def make(self) -> None:
        for folder in (self.cases, self.root / "home", self.root / "tmp", self.root / "start"):
            folder.mkdir(parents=True, exist_ok=True)


def snapshot(folders: list[Path], skip: Path | None = None) -> dict[str, tuple]:
    """(size, mtime, type) of every file under `folders`, `skip` excepted; a folder by its
    type alone (a file created in it is seen on its own)."""
    seen: dict[str, tuple] = {}
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(folder):
            if skip is not None:
                dirnames[:] = [d for d in dirnames if Path(dirpath, d) != skip]
            for name in (*dirnames, *filenames):
                path = os.path.join(dirpath, name)
                try:
                    info = os.lstat(path)
                except OSError:
                    continue
                kind = stat.S_IFMT(info.st_mode)
                seen[path] = (kind,) if kind == stat.S_IFDIR else \
                    (info.st_size, info.st_mtime_ns, kind)
    return seen


def changes(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    return ([f"created {p!r}" for p in sorted(after.keys() - before.keys())]
            + [f"removed {p!r}" for p in sorted(before.keys() - after.keys())]
            + [f"modified {p!r}" for p in sorted(before.keys() & after.keys())
               if before[p] != after[p]])


# ---------------------------------------------------------------------------------------
# Running one case.

class CaseTimeout(BaseException):
    """Raised by the alarm; a BaseException so that no `except Exception` in snnc eats it."""


@contextlib.contextmanager
def time_limit(seconds: float):
    def on_alarm(signum, frame):
        raise CaseTimeout()
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Result:
    case: Case
    settled: str = "ok"             # ok | refused (SnnError at build time) | skipped
    stage: str = "write"
    failures: list[dict] = field(default_factory=list)
    refusal: str = ""               # the SnnError's message, for the statistics

    @property
    def outcome(self) -> str:
        return "failed" if self.failures else self.settled

    def fail(self, stage: str, kind: str, message: str, tb: str = "") -> None:
        self.failures.append({"stage": stage, "type": kind, "message": message[:2000],
                              "traceback": tb})

    def exception(self, exc: BaseException) -> None:
        kind = "timeout" if isinstance(exc, CaseTimeout) else type(exc).__name__
        message = f"more than {CASE_SECONDS} s" if kind == "timeout" else str(exc)
        self.fail(self.stage, kind, message, _traceback_tail(exc))


def _traceback_tail(exc: BaseException, lines: int = 24) -> str:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return "\n".join(text.splitlines()[-lines:])


def write_case(folder: Path, case: Case) -> Path:
    (folder / "sub").mkdir(parents=True)
    for rel, blob in case.files.items():
        target = Path(os.fsdecode(os.path.join(os.fsencode(folder), os.fsencode(rel))))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob)
    main = folder / case.main
    if case.special == "lib is /dev/zero":
        (folder / "lib.snn").unlink()
        (folder / "lib.snn").symlink_to("/dev/zero")
    elif case.special == "lib is a FIFO":
        (folder / "lib.snn").unlink()
        os.mkfifo(folder / "lib.snn")
    elif case.special == "main is sparse 6 GiB":
        with open(main, "r+b") as f:
            f.truncate(6 * 2**30)
    elif case.special == "main is a folder":
        main.unlink()
        main.mkdir()
    return main


def run_case(case: Case, area: Area) -> Result:
    """One case in a fresh folder under area.cases, with the checks around it."""
    import torch

    from snnc.runtime import fused
    folder = area.cases / f"case{case.index}"
    shutil.rmtree(folder, ignore_errors=True)
    result = Result(case)
    watched_before = snapshot(area.watched, skip=folder)
    try:
        main = write_case(folder, case)
    except OSError as exc:  # e.g. a name this file system refuses: not snnc's problem
        result.settled = "skipped"
        result.stage = f"write: {exc}"
        return result
    inputs_before = snapshot([folder])
    start = os.getcwd()
    torch.manual_seed(case.index)
    kernels_were_on = fused.enabled()  # set back: the harness's tests run cases in-process
    fused.use_fused(case.fused)
    try:
        os.chdir(folder)
        with time_limit(CASE_SECONDS):
            _pipeline(case, main, folder, result)
    except BaseException as exc:  # noqa: B036 - every escape is the finding itself
        if isinstance(exc, KeyboardInterrupt):
            raise
        result.exception(exc)
    finally:
        os.chdir(start)
        fused.use_fused(kernels_were_on)
    _after_checks(case, folder, area, result, watched_before, inputs_before)
    _remove(folder)
    return result


def _after_checks(case: Case, folder: Path, area: Area, result: Result,
                  watched_before: dict, inputs_before: dict) -> None:
    changed = changes(watched_before, snapshot(area.watched, skip=folder))
    if changed:
        result.fail("outside the case folder", "changed", "; ".join(changed[:10]))
    after = snapshot([folder])
    touched = [c for c in changes(inputs_before, after)
               if not c.startswith("created")]   # new files (the build's output) are fine
    if touched:
        result.fail("input files", "changed", "; ".join(touched[:10]))
    if (folder / PWNED).exists():
        result.fail("code execution", "payload ran",
                    "text from the input ran as Python (a file name's payload)")


def _remove(folder: Path) -> None:
    def writable(func, path, exc_info):  # a build may leave read-only files behind
        os.chmod(path, 0o700)
        func(path)
    shutil.rmtree(folder, onerror=writable)


def _pipeline(case: Case, main: Path, folder: Path, result: Result) -> None:
    import snnc
    from snnc.errors import SnnError
    result.stage = "compile"
    try:
        net_class = snnc.compile(main)
    except SnnError as err:
        result.stage = "render the SnnError"
        shown = err.render()
        _print_strictly(shown)
        raw = _control_characters(shown)
        if raw:
            result.fail("render the SnnError", "raw control characters",
                        f"{raw!r} in: {shown[:1000]!r}")
        result.settled = "refused"
        result.refusal = err.message
        net_class = None
    if net_class is not None:
        _run_module(net_class, case, result, "")
        if case.fused:
            _compare_fused(net_class, case, result)
    if case.build:
        _build(case, main, folder, result, net_class)
        _inspect(case, main, result, refused=net_class is None)


def _print_strictly(text: str) -> None:
    """What a UTF-8 terminal does with text: raise on what it cannot encode."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    out.write(text)
    out.flush()


def _inputs(net_class, case: Case, batch: int):
    """Random inputs: a sequence [T, B, *shape] each, or (the event backend's modules)
    one [B, *shape] per sample, values in [0, 1) (spike times there)."""
    import torch
    shapes = dict(getattr(net_class, "input_shapes", {}))
    steps = () if getattr(net_class, "per_sample_inputs", False) else (case.steps,)
    return [torch.rand(*steps, batch, *shape) for shape in shapes.values()]


def _batch(net, case: Case) -> int:
    """The case's batch, but 2 or more where the network normalises batches: PyTorch's
    batch norm refuses to train on one value per channel (its contract, not snnc's)."""
    from torch import nn
    norms = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
    return max(2, case.batch) if norms else case.batch


def _run_module(net_class, case: Case, result: Result, prefix: str, fused_on=None):
    """Net() and one forward (and a backward, for some cases); returns the output. A clock
    simulator runs its steps instead (one simulation where it learns)."""
    import torch

    from snnc.runtime import Simulator
    torch.manual_seed(case.index)
    result.stage = prefix + "instantiate"
    if issubclass(net_class, Simulator):
        return _simulate(net_class, case, result, prefix)
    net = net_class()
    result.stage = prefix + "forward"
    batch = _batch(net, case)
    inputs = _inputs(net_class, case, batch)
    if inputs:
        out = net(*inputs)
    else:
        net.steps = min(int(net.steps), 3)  # an instance attribute: the class is left alone
        out = net(batch_size=batch)
    if case.backward:
        result.stage = prefix + "backward"
        total = _sum(out)
        if total is not None and total.requires_grad:
            total.backward()
    return out


def _simulate(net_class, case: Case, result: Result, prefix: str):
    net = net_class(batch_size=case.batch)
    batch = case.batch if not len(net.rules) else 1  # a network that learns runs one
    if batch != case.batch:
        net = net_class(batch_size=batch)
    result.stage = prefix + "run"
    steps = min(int(net.steps), case.steps)
    return net.run(steps, **{name: x for name, x in zip(
        net_class.input_shapes, _inputs(net_class, case, batch), strict=True)})


def _sum(out):
    import torch
    if isinstance(out, torch.Tensor):
        return out.float().sum()
    if isinstance(out, dict):
        parts = [_sum(v) for v in out.values()]
        parts = [p for p in parts if p is not None]
        return sum(parts) if parts else None
    return None


def _compare_fused(net_class, case: Case, result: Result) -> None:
    """The fused kernels and the reference step promise the same result: compare the
    shapes, types and whether a gradient flows."""
    from snnc.runtime import fused
    fused.use_fused(True)
    with_kernels = _run_module(net_class, case, result, "fused ")
    fused.use_fused(False)
    reference = _run_module(net_class, case, result, "reference ")
    result.stage = "fused vs reference"
    a, b = _describe(with_kernels), _describe(reference)
    if a != b:
        result.fail("fused vs reference", "mismatch", f"fused: {a}; reference: {b}")
    elif not _close(with_kernels, reference):
        result.fail("fused vs reference", "other values",
                    f"fused: {_values(with_kernels)}; reference: {_values(reference)}")


def _close(a, b) -> bool:
    import torch
    if isinstance(a, dict):
        return all(_close(a[k], b[k]) for k in a)
    if isinstance(a, torch.Tensor):
        return torch.allclose(a.detach().double(), b.detach().double(), rtol=1e-4, atol=1e-5,
                              equal_nan=True)
    return True


def _values(out) -> str:
    import torch
    if isinstance(out, dict):
        return "{" + ", ".join(f"{k}: {_values(v)}" for k, v in out.items()) + "}"
    return str(out.detach().flatten()[:12].tolist()) if isinstance(out, torch.Tensor) else ""


def _describe(out) -> object:
    import torch
    if isinstance(out, torch.Tensor):
        return (tuple(out.shape), str(out.dtype), out.requires_grad)
    if isinstance(out, dict):
        return {k: _describe(v) for k, v in out.items()}
    return type(out).__name__


def _build(case: Case, main: Path, folder: Path, result: Result, compiled) -> None:
    """`snnc build` as a user runs it, then the module it wrote: imported, instantiated,
    run. `compiled`: the class snnc.compile returned (None: it refused the file)."""
    result.stage = "snnc build"
    argv = ["build", str(main)]
    target = {"FILE": folder / "out.py", "DIR": folder / "built"}.get(case.build)
    if target is not None:
        argv += ["-o", str(target) + ("/" if case.build == "DIR" else "")]
    code, output = _cli(argv)
    if code not in (0, 1):
        result.fail("snnc build", f"exit {code}", output)
        return
    if code == 0 and compiled is None:
        result.fail("snnc build", "exit 0", "snnc.compile refused this file, snnc build "
                    "built it: " + output)
    raw = _control_characters(output)
    if raw:
        result.fail("snnc build", "raw control characters", f"{raw!r} in: {output!r}")
    if code != 0:
        return
    written = {"FILE": [folder / "out.py"], "DEFAULT": [main.with_suffix(".py")]}.get(
        case.build) or sorted((folder / "built").glob("*.py"))
    names = []
    for i, path in enumerate(written):
        result.stage = "import the built module"
        if not path.is_file():
            result.fail("snnc build", "missing output", f"{path} was not written")
            continue
        _check_mode(path, result)
        module = _import(path, f"snnc_fuzz_built_{case.index}_{i}")
        classes = [c for c in vars(module).values()
                   if isinstance(c, type) and c.__module__ == module.__name__
                   and hasattr(c, "forward")]
        if not classes:
            result.fail("import the built module", "no class", f"{path.name} defines none")
            continue
        names += [c.__name__ for c in classes]
        _run_module(classes[0], case, result, "built module: ")
    if compiled is not None and names and compiled.__name__ not in names:
        result.fail("import the built module", "other class", f"snnc.compile returned "
                    f"{compiled.__name__}, snnc build wrote {names}")


def _check_mode(path: Path, result: Result) -> None:
    """A build writes what an ordinary write would: 0666 less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode != 0o666 & ~umask:
        result.fail("snnc build", "file mode", f"{path.name} has mode {mode:o}, umask {umask:o}")


def _cli(argv: list[str]) -> tuple[int, str]:
    """`snnc ARGV`'s exit status and output, printed as to a UTF-8 terminal."""
    from snnc import cli
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = cli.main(argv)
        out.flush()
    return code, _output(out)


def _inspect(case: Case, main: Path, result: Result, refused: bool) -> None:
    """`snnc inspect` in the three formats: exit 0 or 1, one JSON document, no raw
    control characters."""
    for fmt in ("json", "text", "dot"):
        result.stage = f"snnc inspect --format {fmt}"
        code, output = _cli(["inspect", str(main), "--format", fmt])
        # what snnc.compile built, the front end alone must accept
        if code not in (0, 1) or (code == 1 and not refused):
            result.fail(result.stage, f"exit {code}", output[:2000])
        elif _control_characters(output):
            result.fail(result.stage, "raw control characters",
                        f"{_control_characters(output)!r} in: {output[:1000]!r}")
        elif fmt == "json" and code == 0:
            try:
                json.loads(output)
            except ValueError as exc:
                result.fail(result.stage, "not one JSON document", f"{exc}: {output[:500]!r}")


def _output(out: io.TextIOWrapper) -> str:
    return out.buffer.getvalue().decode("utf-8", errors="replace")


def _control_characters(text: str) -> str:
    """Characters that a terminal acts on (escape sequences, bells, ...): never raw."""
    return "".join(sorted(set(re.findall(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", text))))


def _import(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


# ---------------------------------------------------------------------------------------
# Shrinking: a failure's main file, cut down while it fails the same way.

def shrink(case: Case, area: Area, budget_s: float) -> Case:
    """Delete top-level blocks (neurons, networks), then chunks of lines, then of words, as
    long as the case still fails at the same stage with the same exception type; stops
    after `budget_s`."""
    first = run_case(case, area)
    if not first.failures:
        return case
    want = {(f["stage"], f["type"]) for f in first.failures[:1]}
    deadline = time.monotonic() + budget_s

    def still_fails(text: bytes) -> bool:
        trial = Case(**{**case.__dict__, "files": {**case.files, case.main: text}})
        found = run_case(trial, area)
        return bool(want & {(f["stage"], f["type"]) for f in found.failures})

    text = case.files[case.main]
    for split in (_blocks, lambda b: b.splitlines(keepends=True), _words):
        text = _ddmin(split(text), still_fails, deadline)
    return Case(**{**case.__dict__, "files": {**case.files, case.main: text}})


def _blocks(blob: bytes) -> list[bytes]:
    """The text cut where braces are balanced at the end of a line: whole definitions."""
    parts, depth, start = [], 0, 0
    for i, byte in enumerate(blob):
        depth += (byte == ord("{")) - (byte == ord("}"))
        if byte == ord("\n") and depth <= 0:
            parts.append(blob[start:i + 1])
            start = i + 1
    return parts + ([blob[start:]] if start < len(blob) else [])


def _words(blob: bytes) -> list[bytes]:
    """Tokens, each with the whitespace after it: deleting one keeps the text readable."""
    words: list[str] = []
    for token in corpus.tokenize(blob.decode("utf-8", "surrogateescape")):
        if token.isspace() and words:
            words[-1] += token
        else:
            words.append(token)
    return [w.encode("utf-8", "surrogateescape") for w in words]


def _ddmin(parts: list[bytes], still_fails, deadline: float) -> bytes:
    chunk = max(1, len(parts) // 2)
    while chunk >= 1 and time.monotonic() < deadline:
        i, removed = 0, False
        while i < len(parts) and time.monotonic() < deadline:
            trial = parts[:i] + parts[i + chunk:]
            if trial and still_fails(b"".join(trial)):
                parts, removed = trial, True
            else:
                i += chunk
        if not removed:
            chunk //= 2
    return b"".join(parts)


# ---------------------------------------------------------------------------------------
# The process: limits, environment, the loop over cases.

def limit_process() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
    sys.dont_write_bytecode = True  # imported builds leave no __pycache__ behind
    warnings.simplefilter("ignore")
    import torch
    torch.set_num_threads(1)  # the kernels follow torch's thread count


def case_record(case: Case) -> dict:
    return {"case": case.index, "kind": case.kind, "origin": case.origin, "main": case.main,
            "build": case.build, "fused": case.fused, "backward": case.backward,
            "special": case.special,
            "files": {k: v[:MAX_SHOWN].decode("utf-8", "surrogateescape")
                      for k, v in case.files.items()}}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.file = args.file and os.path.abspath(args.file)  # before the chdir below
    area = Area(Path(args.area))
    area.make()
    # what the test sets, for a replay run by hand
    os.environ.setdefault("SNNC_MAX_MEMORY", SNNC_MAX_MEMORY)
    os.environ.setdefault("SNNC_TRACEBACK", "1")
    os.environ.setdefault("SNNC_CACHE", str(area.root / "cache"))
    os.chdir(area.root / "start")
    limit_process()
    results = open(area.root / "results.jsonl", "a", encoding="utf-8")

    def emit(record: dict) -> None:
        results.write(json.dumps(record) + "\n")
        results.flush()

    for index in range(args.start, args.stop) if not args.file else [0]:
        emit({"event": "start", "case": index})
        if index == args.crash_at:  # the harness's own tests: a worker that dies ...
            os.kill(os.getpid(), signal.SIGKILL)
        if index == args.hang_at:  # ... and one that the alarm cannot stop
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
            time.sleep(3600)
        began = time.monotonic()
        try:
            case = _file_case(args) if args.file else make_case(args.seed, index)
        except Exception as exc:  # a bug of this fuzzer: reported, not hidden
            emit(_generation_failure(index, exc))
            continue
        if args.shrink:
            case = shrink(case, area, args.shrink)
        record = _done(case, run_case(case, area), time.monotonic() - began)
        emit(record)
        if args.file:  # a replay: say what happened
            print(json.dumps(record, indent=1, ensure_ascii=False))
    return 0


def _done(case: Case, result: Result, seconds: float) -> dict:
    record = {"event": "done", "case": case.index, "outcome": result.outcome,
              "stage": result.stage, "seconds": round(seconds, 4), "kind": case.kind,
              "build": case.build, "fused": case.fused, "refusal": result.refusal[:200]}
    if result.failures:
        record["failures"] = [{**case_record(case), **f} for f in result.failures]
    return record


def _generation_failure(index: int, exc: Exception) -> dict:
    failure = {"case": index, "kind": "?", "origin": "make_case", "main": "", "build": None,
               "fused": False, "backward": False, "special": None, "files": {},
               "stage": "generate the case (a bug of the fuzzer)",
               "type": type(exc).__name__, "message": str(exc),
               "traceback": _traceback_tail(exc)}
    return {"event": "done", "case": index, "outcome": "failed", "stage": "generate",
            "seconds": 0, "kind": "?", "failures": [failure]}


def _file_case(args) -> Case:
    path = Path(args.file)
    return Case(0, "file", str(path), "net.snn", {"net.snn": path.read_bytes(),
                                                  "lib.snn": corpus.LIB.encode()},
                build=args.build, fused=args.fused, backward=args.backward)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--area", required=True, help="this worker's own folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--stop", type=int, default=1)
    parser.add_argument("--shrink", type=float, default=0,
                        help="shrink each case's failure for this many seconds first")
    parser.add_argument("--file", help="run this one .snn file as a case")
    parser.add_argument("--build", choices=("FILE", "DIR", "DEFAULT"))
    parser.add_argument("--fused", action="store_true")
    parser.add_argument("--backward", action="store_true")
    parser.add_argument("--crash-at", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--hang-at", type=int, help=argparse.SUPPRESS)
    return parser


if __name__ == "__main__":
    sys.exit(main())
