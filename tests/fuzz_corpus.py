"""The fuzzers' corpus: seed files, token pools, hostile inputs, and the mutations.

Shared by the front-end fuzzer (test_fuzz.py, which draws through hypothesis so that
failures shrink) and the whole-pipeline fuzzer (fuzz_pipeline_worker.py, which draws
from a seeded `random.Random`, so that a case is its seed and a child process can
regenerate any case by number). The mutations draw through a small interface,
`Draw`, that both implement with the same distributions' shapes: HypothesisDraw maps
each call to the `data.draw(st....)` it stands for, so test_fuzz.py draws exactly
what it drew before the two shared this module.
"""
from __future__ import annotations

import math
import random
import re
import struct
from functools import cache
from pathlib import Path

from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
SAMPLES_DIR = ROOT / "samples"
STDLIB = ROOT / "snnc" / "stdlib" / "neurons.snn"

# ---------------------------------------------------------------------------------------
# Seed corpus: small valid files written for this test (each must pass `snnc check`).

LIB = """\
# A small library of user neurons, imported as "lib.snn".
neuron QIF(v_threshold = 1.0, v_reset = 0.0, k = 0.5) {
    state v = v_reset
    charge v = v + k * v * v + x
    fire v >= v_threshold
    reset hard
}

neuron SoftLIF(tau = 2.0, v_threshold = 1.0) {
    state v = 0
    charge v = v + (x - v) / tau
    fire v > v_threshold
    reset soft
}
"""

MLP = """\
# A two-layer perceptron, every setting written out.
network mnist_small {
    dt = 1 ms
    steps = 20
    backend = softbp
    seed = 42

    input img[1, 28, 28]
    encoder spk = poisson(img)

    population hidden[100] = LIF(tau = 2.0, v_threshold = 1.0, v_reset = 0.0,
                                 surrogate = atan(alpha = 2.0), detach_reset = true)
    population out[10] = LIF(tau = 2.0, decay_input = false)

    connect spk -> hidden : flatten | dense(bias = false, w = uniform(-0.1, 0.1))
    connect hidden -> out : dense(w = normal(0, 0.1)) | dropout(0.2)

    monitor hidden.spikes, out.v
    readout out = rate
}
"""

CONV = """\
network conv_small {
    steps = 8; seed = 3
    input img[1, 28, 28]
    encoder spk = constant(img)
    population c1[8, 28, 28] = PLIF(init_tau = 2.0, v_threshold = 1.0)
    population p1[8, 14, 14] = IF(surrogate = sigmoid(alpha = 4.0))
    population fc[10] = LIF(tau = 2.0)
    connect spk -> c1 : conv2d(k = 3, stride = 1, pad = 1, bias = false) | batchnorm
    connect c1 -> p1 : maxpool(2)
    connect p1 -> fc : flatten | dense(bias = true)
    readout fc = count
}

network two_in_one_file {
    input a[4]
    population p[4] = IF
    connect a -> p
}
"""

CUBA = """\
network cuba_small {
    dt = 0.1 ms
    steps = 1000
    backend = clock
    seed = 1
    encoder noise[100] = poisson(rate = 15 Hz)
    population exc[80] = LIF(tau = 20 ms, v_rest = -49, v_reset = -60, v_threshold = -50,
                             refractory = 5 ms, v_init = uniform(-60, -50))
    population inh[20] = LIF(tau = 20 ms, v_rest = -49, v_reset = -60, v_threshold = -50,
                             refractory = 5 ms)
    connect noise -> exc : sparse(p = 0.1, w = 0.5) via exp_current(tau = 5 ms)
    connect exc -> inh : sparse(p = 0.02, w = 1.62) delay 1 ms via exp_current(tau = 5 ms)
    connect inh -> exc : sparse(p = 0.02, w = -9) delay uniform(1, 5)
        via exp_current(tau = 10 ms)
    connect exc -> exc as recurrent : sparse(p = 0.02) delay 2
        learn stdp(tau_pre = 20 ms, tau_post = 20 ms, a_pre = 0.01, a_post = -0.0105,
                   w_min = 0, w_max = 1, f_w = multiplicative)
    monitor exc.spikes, exc.v, inh.spikes
}
"""

CUSTOM = """\
import "lib.snn"

# Adaptive LIF: a threshold that rises with each spike.
neuron AdaptiveLIF(tau = 20.0, tau_a = 100.0, beta = 0.2, v_threshold = 1.0,
                   v_reset = 0.0) {
    param decay = exp(-1 / tau)
    state v = v_reset
    state a = 0
    charge { v = v * decay + x - a; a = a - a / tau_a }
    fire v >= v_threshold + beta * a
    reset { v = v_reset; a = a + beta }
}

neuron Fancy(tau = 2.0, v_threshold = 1.0, v_reset = 0.0, gain = 1.0, leaky = true) {
    param g = sqrt(gain ** 2) learnable
    param k = 1 / tau
    state v = v_reset
    state r = uniform(0, 0.1)
    charge {
        v = if(leaky and not (tau <= 0), v + (x * g - v) * k, v + x)
        r = clamp(r * 0.9 + abs(tanh(x)) * dt, 0, max(1, min(2, 3)))
    }
    fire v >= v_threshold or r > 0.99 and v != v_reset
    reset { v = v_reset; r = 0 }
}

network custom {
    dt = 0.5 ms; steps = 40
    input x[10]
    encoder s = latency(x, t_max = 10 ms, mode = linear)
    population a[10] = AdaptiveLIF(tau = 2 ms, beta = 0.1)
    population b[10] = Fancy(tau = 4 ms, leaky = false, v_init = normal(0, 0.1), r_init = 0)
    population q[10] = QIF(k = 0.25)
    population soft[10] = SoftLIF(2.0, 1.0)
    connect s -> a : one_to_one(w = 2.0)
    connect a -> b : dense
    connect b -> q : dense | scale(c = 0.5)
    connect q -> soft
    connect soft -> a delay 1
    monitor a.a, b.r, q.v
    readout soft = v_max
}
"""

ZOO = """\
# Every stdlib model, encoder, op, synapse and readout that fits in one network.
network zoo {
    dt = 0.5 ms; steps = 50; seed = 7
    input img[2, 8, 8]
    input pat[10, 16]
    input sig[4, 32]
    encoder lat = latency(img, t_max = 20, mode = log)
    encoder per = periodic(pat)
    encoder c = constant(sig)
    population izh[16] = Izhikevich(a = 0.02, b = 0.2, c = -65, d = 8)
    population cuba[16] = CubaLIF(c_decay = 0.5)
    population ilc[16] = ILCLIF(dec_pop_dim = 2)
    population sf[16] = SFLIF(r = 1.0, tau = 2.0)
    population sfi[16] = SFIF
    population rif[16] = RIF
    population conv[8, 32] = LIF(surrogate = piecewise(a = 1.0, b = 0.01, c = 0.5))
    population pooled[2, 4, 4] = IF(surrogate = sign_swish(beta = 5.0))
    population mat[2, 8, 8] = IF(surrogate = rect(width = 1.0), refractory = 2)
    population half[1, 8, 8] = ILCIF
    connect per -> izh : one_to_one(w = 1.5) via spike_current(amplitude = 2.0)
    connect per -> cuba : scale(0.5) | noise(std = 0.1)
        via exp_decay_current(tau = 2 ms, amplitude = 1.0)
    connect izh -> ilc : dense via stp(v_base = 0.2, tau_f = 750 ms, tau_d = 50 ms)
    connect cuba -> sf via filter(tau = 100.0, learnable = true)
    connect sf -> rif : one_to_one delay 1
    connect sf -> sfi
    connect rif -> izh delay 2 ms
    connect izh -> cuba delay 1
    connect c -> conv : conv1d(k = 3, stride = 1, pad = 1, bias = true)
    connect lat -> pooled : avgpool(2)
    connect lat -> mat : dct(k = 4)
    connect mat -> mat as self : axat delay 1
    connect mat -> half : channel_maxpool(2)
    monitor izh.u, ilc.v, per.spikes, sf.due
    readout ilc = first_spike
}
"""

ARITH = """\
# Parameters mixed with literals in the update, so constant folding has work to do.
neuron Arith(m = 2.0, p = 2.0, q = 0.5, v_threshold = 1.0, v_reset = 0.0) {
    param h = m * 2
    state v = v_reset
    state w = 0
    charge {
        v = v * (1 - 1 / m) + x * q ** p + v_reset / p - h * 0
        w = w + (m - p) * dt + abs(q - 1) ** 2 - sqrt(p) * log(m) + exp(q) * w
    }
    fire v >= v_threshold * m / p
    reset { v = v_reset * q; w = w - 1 / p }
}

network arith {
    dt = 0.5 ms
    input i[3]
    population a[3] = Arith(m = 4.0, p = 2, q = 0.25, v_init = 0.5, w_init = uniform(0, 1))
    population b[3] = Arith(m = 3, refractory = 2 ms, surrogate = sigmoid)
    connect i -> a; connect a -> b : one_to_one(w = 1 / 3) delay 0.5 ms
}
"""

EVENT = """\
network tempotron_small {
    steps = 500
    backend = event
    input feat[4]
    encoder g = gaussian_tuning(feat, m = 8, x_min = 0, x_max = 1, t_max = 100)
    population out[2] = Tempotron(tau = 15.0, tau_s = 3.75, v_threshold = 1.0)
    connect g -> out : flatten | dense(w = normal(0.01, 0.01))
    monitor out.v
    readout out = voting(2)
}
"""

EMBEDDED = {
    "lib.snn": LIB, "mlp.snn": MLP, "conv.snn": CONV, "cuba.snn": CUBA,
    "custom.snn": CUSTOM, "zoo.snn": ZOO, "arith.snn": ARITH, "event.snn": EVENT,
}

IMPORT_RE = re.compile(r'^\s*import\s+"([^"\n]*)"', re.M)


def _imported_files(path: Path) -> dict[str, bytes]:
    """The files `path` imports from its own folder (transitively), by relative path."""
    base = path.parent.resolve()
    found: dict[str, bytes] = {}
    todo = [path]
    while todo:
        current = todo.pop()
        try:
            text = current.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for rel in IMPORT_RE.findall(text):
            target = (current.parent / rel).resolve()
            if not target.is_relative_to(base) or not target.is_file():
                continue
            key = target.relative_to(base).as_posix()
            if key not in found:
                found[key] = target.read_bytes()
                todo.append(target)
    return found


def _seeds() -> list[tuple[str, bytes, dict[str, bytes]]]:
    """(name, content, extra files to write beside it), globbed at collection time."""
    seeds = [(f"samples/{p.name}", p.read_bytes(), _imported_files(p))
             for p in sorted(SAMPLES_DIR.glob("*.snn"))]
    seeds.append(("stdlib/neurons.snn", STDLIB.read_bytes(), {}))
    seeds += [(f"embedded/{name}", text.encode(), {}) for name, text in EMBEDDED.items()]
    return seeds


SEEDS = _seeds()

# ---------------------------------------------------------------------------------------
# Tokens and the pool of replacements.

TOKEN_RE = re.compile(
    r'[A-Za-z_][A-Za-z0-9_]*'                        # identifiers and keywords
    r'|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?'      # numbers
    r'|"[^"\n]*"'                                    # strings
    r'|#[^\n]*'                                      # comments
    r'|\s+'                                          # whitespace
    r'|->|\*\*|[<>=!]='                              # two-character operators
    r'|.',                                           # any other single character
    re.S)

KEYWORDS = ["network", "neuron", "input", "encoder", "population", "connect", "delay", "via",
            "learn", "monitor", "readout", "import", "param", "state", "charge", "fire",
            "reset", "learnable", "true", "false", "as", "kernel", "feedback", "and", "or",
            "not", "if"]
NAMES = ["x", "v", "t", "dt", "u", "c", "w", "steps", "seed", "backend", "tau", "tau_s",
         "v_threshold", "v_reset", "v_rest", "v_init", "decay_input", "init_tau",
         "dec_pop_dim", "surrogate", "detach_reset", "refractory", "alpha", "beta", "k",
         "stride", "pad", "bias", "p", "out", "std", "mode", "linear", "log", "rate", "m",
         "x_min", "x_max", "t_max", "pattern", "hard", "soft", "none", "block", "clock",
         "softbp", "event", "additive", "multiplicative", "spikes",
         "IF", "LIF", "PLIF", "RIF", "CubaLIF", "Izhikevich", "Tempotron", "ILCIF", "ILCLIF",
         "ILCCubaLIF", "SFIF", "SFLIF", "QIF", "SoftLIF", "AdaptiveLIF", "Fancy",
         "dense", "sparse", "one_to_one", "conv1d", "conv2d", "maxpool", "avgpool", "flatten",
         "batchnorm", "dropout", "scale", "noise", "channel_maxpool", "dct", "axat",
         "poisson", "constant", "latency", "periodic", "gaussian_tuning",
         "exp_current", "spike_current", "exp_decay_current", "stp", "filter", "stdp",
         "count", "v_max", "first_spike", "voting", "sigmoid", "atan", "piecewise",
         "sign_swish", "rect", "uniform", "normal", "exp", "sqrt", "tanh", "abs", "min",
         "max", "clamp", "ilc", "inf", "nan", "None", "True", "self"]
HOSTILE_NAMES = ["__import__", "os", "system", "os.system", "__class__", "__dict__",
                 "__init__", "eval", "exec", "open", "sys", "torch", "print", "lambda",
                 "a" * 300, "_" * 64, "X" * 5000]
OPERATORS = ["+", "-", "*", "/", "**", ">=", "<=", "==", "!=", ">", "<", "->", "=", ":",
             "|", ",", ".", ";", "(", ")", "[", "]", "{", "}", "!", "&", "@", "'", "\\",
             "$", "%", "^", "~", "`", "?", '"', "#"]
NUMBERS = ["0", "1", "2", "3", "-1", "-2.5", "2.0", "0.5", "1.", ".5", "1e-3", "1e3", "0.0",
           "-0", "00", "007", "1e999", "-1e999", "1e-999", "1e30", "1e31", "-1e30",
           "99999999999999999999999", "999999999999999999", "1000000000000000000",
           "2147483647", "2147483648", "4294967296", "1e308", "1.7976931348623157e308",
           "5e-324", "1e-320", "1e+5", "1E5", "9" * 400, "0." + "0" * 400 + "1",
           "1 ms", "20 ms", "0.1 ms", "1 s", "5 us", "15 Hz", "1 kHz", "1e999 ms",
           "1e-320 ms", "1e40 s", "-5 ms", "0 ms", "1e999 Hz", "0 Hz", "1e30 kHz", "100000"]
# The values most likely to break arithmetic: zero, negatives, overflow, denormals.
EDGE_NUMBERS = ["0", "0.0", "-1", "-8", "0.5", "1e999", "-1e999", "1e30", "1e31", "1e-320",
                "5e-324", "99999999999999999999999", "1e308", "400", "1e40"]
VALID_UNITS = ["s", "ms", "us", "Hz", "kHz"]
UNITS = ["s", "ms", "us", "Hz", "kHz", "mV", "Hzz", "sec"]
STRINGS = ['"lib.snn"', '"/etc/passwd"', '"../../x.snn"', '"../x.snn"', '""', '"."',
           '"sub"', '"sub/"', '"lib.snn/"', '"./lib.snn"', '"sub/../lib.snn"', '"net.snn"',
           '"missing.snn"', '"/tmp"', '"C:\\\\x.snn"', '"~/x.snn"', '"\\u0000"',
           '"' + "a" * 300 + '"', '"' + "a/" * 3000 + '"', '"lib.snn\\x00"', '"é.snn"']
SPACES = [" ", "\n", "\t", "\r\n", "\r", "\x0c", "\x0b", ";", "# comment\n", "\u00a0",
          "\ufeff", "\u2028", "\x00", "\x1c"]
UNICODE = ["é", "réseau", "٣", "１", "ｘ", "😀", "\u0300", "\udcff", "Ω", "ß", "ﬁ",
           "\u202e", "\U0010ffff"]

POOL = (KEYWORDS + NAMES + HOSTILE_NAMES + OPERATORS + NUMBERS + UNITS + STRINGS + SPACES
        + UNICODE)

# Interesting byte strings for the byte-level mutations.
BYTES = [b"\x00", b"\xff", b"\xfe", b"\x80", b"\xc3", b"\xc3\x28", b"\xe2\x82",
         b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xef\xbb\xbf", b"\xff\xfe", b"\r", b"\n",
         b"\x1a", b"\x7f", b"\x0c", b"\xe2\x80\xa8", b"\xc2\x85", b"\xc0\xaf"]


def tokenize(text: str) -> list[str]:
    tokens = TOKEN_RE.findall(text)
    assert "".join(tokens) == text
    return tokens


def tokens_and_names(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A file's tokens and its own identifiers (good replacements: they resolve)."""
    tokens = tokenize(text)
    names = sorted({t for t in tokens if re.fullmatch(r"[A-Za-z_]\w*", t)}) or ["x"]
    return tuple(tokens), tuple(names)


@cache
def seed_tokens(index: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """tokens_and_names of a seed, computed once."""
    return tokens_and_names(SEEDS[index][1].decode("utf-8", errors="replace"))


# ---------------------------------------------------------------------------------------
# Two sources of randomness behind one interface.

class HypothesisDraw:
    """Draws through hypothesis's `st.data()`, so that a failure shrinks."""

    def __init__(self, data) -> None:
        self._data = data

    def booleans(self, label: str | None = None) -> bool:
        return self._data.draw(st.booleans(), label=label)

    def integers(self, low: int | None = None, high: int | None = None,
                 label: str | None = None) -> int:
        return self._data.draw(st.integers(low, high), label=label)

    def sampled_from(self, items):
        return self._data.draw(st.sampled_from(items))

    def floats(self) -> float:
        return self._data.draw(st.floats(allow_nan=False, allow_infinity=False))

    def text(self, min_size: int, max_size: int) -> str:
        return self._data.draw(st.text(min_size=min_size, max_size=max_size))

    def binary(self, min_size: int, max_size: int) -> bytes:
        return self._data.draw(st.binary(min_size=min_size, max_size=max_size))


# Floats hypothesis is fond of, for RandomDraw to favour as well.
EDGE_FLOATS = (0.0, -0.0, 1.0, -1.0, 0.5, 1e-300, 5e-324, 2.2250738585072014e-308,
               1.7976931348623157e308, -1.7976931348623157e308, 1e16, 2.0 ** 53, 1.1)
# Code points for RandomDraw.text, printable ASCII the likeliest; no surrogates (as st.text).
CHAR_RANGES = ((0x20, 0x7E),) * 6 + ((0x00, 0x1F), (0x7F, 0x9F), (0xA0, 0xD7FF),
                                      (0xE000, 0xFFFF), (0x10000, 0x10FFFF))


class RandomDraw:
    """The same draws from a seeded `random.Random`: much faster than hypothesis, and a
    case is reproduced from its seed alone, in any process."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def booleans(self, label: str | None = None) -> bool:
        return self.rng.random() < 0.5

    def integers(self, low: int | None = None, high: int | None = None,
                 label: str | None = None) -> int:
        if low is not None and high is not None:
            return self.rng.randint(low, high)
        # Unbounded: mostly small, sometimes far beyond 64 bits, as hypothesis draws them.
        value = self.rng.getrandbits(self.rng.choice((4, 8, 16, 32, 64, 128)))
        value = value if self.rng.random() < 0.5 else -value
        if low is not None:
            return low + abs(value)
        if high is not None:
            return high - abs(value)
        return value

    def sampled_from(self, items):
        return self.rng.choice(tuple(items))

    def floats(self) -> float:
        roll = self.rng.random()
        if roll < 0.3:
            return self.rng.choice(EDGE_FLOATS)
        if roll < 0.6:
            return self.rng.uniform(-100.0, 100.0)
        while True:  # any finite double, by its bits
            value = struct.unpack("<d", self.rng.randbytes(8))[0]
            if math.isfinite(value):
                return value

    def text(self, min_size: int, max_size: int) -> str:
        return "".join(chr(self.rng.randint(*self.rng.choice(CHAR_RANGES)))
                       for _ in range(self.rng.randint(min_size, max_size)))

    def binary(self, min_size: int, max_size: int) -> bytes:
        return self.rng.randbytes(self.rng.randint(min_size, max_size))


# ---------------------------------------------------------------------------------------
# Mutations, through a Draw (HypothesisDraw or RandomDraw).

def _number_token(draw) -> str:
    kind = draw.sampled_from(["int", "float", "exp", "unit"])
    if kind == "int":
        return str(draw.integers(-10**30, 10**30))
    if kind == "float":
        return repr(draw.floats())
    if kind == "exp":
        return f"{draw.integers(0, 99)}e{draw.integers(-400, 400)}"
    return f"{draw.integers(0, 10**6)} {draw.sampled_from(VALID_UNITS)}"


def _new_token(draw, names: tuple[str, ...]) -> str:
    source = draw.sampled_from(["pool", "pool", "name", "name", "number", "text"])
    if source == "pool":
        return draw.sampled_from(POOL)
    if source == "name":
        return draw.sampled_from(names)
    if source == "number":
        return _number_token(draw)
    return draw.text(1, 6)


def _span(draw, n: int) -> tuple[int, int]:
    start = draw.integers(0, max(0, n - 1))
    length = draw.integers(1, 12)
    return start, min(n, start + length)


NUMBER_RE = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# An identifier that is not a keyword (replacing one of those is a syntax error).
PLAIN_NAME_RE = re.compile(r"(?!(?:" + "|".join(KEYWORDS) + r")\b)[A-Za-z_][A-Za-z0-9_]*")


def _pick(draw, tokens: list[str], pattern: re.Pattern | None) -> int | None:
    """The index of a token (matching `pattern`, if given) other than whitespace."""
    if pattern is None:
        candidates = [i for i, t in enumerate(tokens) if not t.isspace()]
    else:
        candidates = [i for i, t in enumerate(tokens) if pattern.fullmatch(t)]
    if not candidates:
        return None
    return candidates[draw.integers(0, len(candidates) - 1)]


def _value_token(draw, names: tuple[str, ...], numeric: bool = False) -> str:
    """Something that can stand where a value is expected (a number, if `numeric`)."""
    kind = "number" if numeric else \
        draw.sampled_from(["number", "number", "name", "call", "bool"])
    if kind == "number":
        source = draw.sampled_from(["edge", "edge", "pool", "generated"])
        if source == "generated":
            return _number_token(draw) if not numeric else str(draw.integers())
        pool = EDGE_NUMBERS if source == "edge" else NUMBERS
        if numeric:
            pool = [n for n in pool if NUMBER_RE.fullmatch(n.lstrip("-"))]
        return draw.sampled_from(pool)
    if kind == "name":
        return draw.sampled_from(names + tuple(NAMES))
    if kind == "call":
        func = draw.sampled_from(["uniform", "normal", "log", "exp", "sqrt", "if",
                                  "min", "clamp", "atan", "sigmoid", "dense"])
        args = [_number_token(draw) for _ in range(draw.integers(0, 3))]
        return f"{func}({', '.join(args)})"
    return draw.sampled_from(["true", "false"])


TOKEN_OPS = ["insert", "delete", "replace", "replace", "duplicate", "swap", "delete_span",
             "duplicate_span", "move_span", "number", "name", "kwarg", "splice"]
# Edits that usually keep the file parseable, so that the checks behind the parser, the
# graph and the passes get fuzzed too (most other edits end in a syntax error).
SEMANTIC_OPS = ["number", "number", "number", "number", "name", "name", "kwarg", "kwarg",
                "splice"]


@cache
def _corpus_lines() -> tuple[str, ...]:
    """Every statement-looking line of the corpus, for crossover between files."""
    lines = set()
    for _, content, _ in SEEDS:
        for line in content.decode("utf-8", errors="replace").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                lines.add(line.strip())
    return tuple(sorted(lines))


def mutate_tokens(draw, tokens: list[str], names: tuple[str, ...]) -> list[str]:
    """1 to 6 token edits, half of the time only the parse-preserving ones."""
    tokens = list(tokens)
    ops = SEMANTIC_OPS if draw.booleans(label="semantic") else TOKEN_OPS
    for _ in range(draw.integers(1, 6, label="token mutations")):
        if not tokens:
            tokens.append(_new_token(draw, names))
            continue
        op = draw.sampled_from(ops)
        i = _pick(draw, tokens, None)
        if i is None:
            i = 0
        if op == "insert":
            new = _new_token(draw, names)
            if draw.booleans():
                new = f" {new} "
            tokens.insert(i + draw.integers(0, 1), new)
        elif op == "delete":
            del tokens[i]
        elif op == "replace":
            tokens[i] = _new_token(draw, names)
        elif op == "duplicate":
            tokens.insert(i, tokens[i] + draw.sampled_from(["", " "]))
        elif op == "swap":
            j = _pick(draw, tokens, None) or 0
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif op == "number":
            j = _pick(draw, tokens, NUMBER_RE)
            if j is not None:
                # Before a unit only a number keeps the syntax: `20 ms` -> `1e999 ms`.
                after = "".join(tokens[j + 1:j + 3]).strip()
                unit = any(after.startswith(u) for u in VALID_UNITS)
                tokens[j] = _value_token(draw, names, numeric=unit)
        elif op == "name":
            j = _pick(draw, tokens, IDENT_RE if ops is TOKEN_OPS else PLAIN_NAME_RE)
            if j is not None:
                words = names + tuple(NAMES) + (() if ops is SEMANTIC_OPS else tuple(KEYWORDS))
                tokens[j] = draw.sampled_from(words)
        elif op == "kwarg":
            opens = [k for k, t in enumerate(tokens)  # the parenthesis of a call
                     if t == "(" and k > 0 and IDENT_RE.fullmatch(tokens[k - 1])]
            if opens:
                j = opens[draw.integers(0, len(opens) - 1)]
                key = draw.sampled_from(names + tuple(NAMES))
                tokens.insert(j + 1, f" {key} = {_value_token(draw, names)},")
        elif op == "splice":
            breaks = [k for k, t in enumerate(tokens) if "\n" in t or t == ";"] or [0]
            j = breaks[draw.integers(0, len(breaks) - 1)]
            line = draw.sampled_from(_corpus_lines())
            tokens.insert(j + 1, f"\n{line}\n")
        else:
            start, end = _span(draw, len(tokens))
            chunk = tokens[start:end]
            if op == "delete_span":
                del tokens[start:end]
            elif op == "duplicate_span":
                tokens[end:end] = chunk * draw.integers(1, 3)
            else:
                del tokens[start:end]
                at = draw.integers(0, len(tokens))
                tokens[at:at] = chunk
    return tokens


def _code_offsets(blob: bytes) -> list[int]:
    """Byte offsets where a token other than a comment or whitespace starts: the samples are
    mostly comments, and a mutation there tests little."""
    offsets, at = [], 0
    for token in tokenize(blob.decode("utf-8", errors="surrogateescape")):
        if not token.isspace() and not token.startswith("#"):
            offsets.append(at)
        at += len(token.encode("utf-8", errors="surrogateescape"))
    return offsets or [0]


def mutate_bytes(draw, blob: bytes) -> bytes:
    buf = bytearray(blob)
    code = _code_offsets(blob)
    for _ in range(draw.integers(1, 4, label="byte mutations")):
        if draw.booleans():
            at = min(len(buf), code[draw.integers(0, len(code) - 1)])
        else:
            at = draw.integers(0, len(buf))
        op = draw.sampled_from(
            ["insert_random", "insert_special", "delete", "replace", "flip", "truncate",
             "duplicate"])
        if op == "insert_random":
            buf[at:at] = draw.binary(1, 8)
        elif op == "insert_special":
            buf[at:at] = draw.sampled_from(BYTES)
        elif op == "delete":
            del buf[at:at + draw.integers(1, 16)]
        elif op == "replace" and at < len(buf):
            buf[at] = draw.integers(0, 255)
        elif op == "flip" and at < len(buf):
            buf[at] ^= 1 << draw.integers(0, 7)
        elif op == "truncate":
            del buf[at:]
        elif op == "duplicate":
            end = min(len(buf), at + draw.integers(1, 64))
            buf[end:end] = buf[at:end]
    return bytes(buf)


# ---------------------------------------------------------------------------------------
# Hostile inputs, whole files.

DEEP = 5000
HOSTILE_FILES = {
    "import_etc_passwd": 'import "/etc/passwd"\n',
    "import_parent": 'import "../../x.snn"\nnetwork n { population a[1] = LIF }\n',
    "import_self": 'import "net.snn"\nnetwork n { population a[1] = LIF }\n',
    "import_folder": 'import "sub"\n',
    "import_dot": 'import "."\n',
    "import_empty": 'import ""\n',
    "import_long_name": 'import "' + "a" * 5000 + '"\n',
    "import_long_path": 'import "' + "a/" * 3000 + 'x.snn"\n',
    "import_nul": 'import "lib.snn\x00"\n',
    "import_twice": 'import "lib.snn"\nimport "./lib.snn"\nimport "sub/../lib.snn"\n',
    "dunder_names": "network __import__ { population __class__[1] = LIF\n"
                    "  population system[1] = LIF; connect __class__ -> system }\n",
    "os_system_call": 'network n { steps = __import__("os").system("echo hi") }\n',
    "os_system_probe": "network n { population a[1] = LIF; monitor os.system }\n",
    "os_system_model": "network n { population a[1] = os.system }\n",
    "long_identifier": "network " + "a" * 100_000 + " { population b[1] = LIF }\n",
    "long_population": "network n { population " + "p" * 100_000 + "[1] = LIF }\n",
    "deep_parens_setting": "network n { steps = " + "(" * DEEP + "1" + ")" * DEEP + " }\n",
    "deep_parens_shape": "network n { population a[" + "(" * DEEP + "1" + ")" * DEEP
                         + "] = LIF }\n",
    "deep_parens_charge": "neuron N(v_reset = 0) { state v = 0; charge v = "
                          + "(" * DEEP + "x" + ")" * DEEP
                          + "; fire v >= 1; reset hard }\nnetwork n { population a[1] = N }\n",
    "deep_unclosed_parens": "network n { steps = " + "(" * DEEP + "\n",
    "deep_unary": "network n { steps = " + "-" * DEEP + "1 }\n",
    "deep_not": "network n { seed = " + "not " * DEEP + "true }\n",
    "deep_power": "network n { steps = " + "1 ** " * DEEP + "1 }\n",
    "deep_sum": "network n { steps = " + "1 + " * 20_000 + "1 }\n",
    "deep_calls": "network n { steps = " + "abs(" * DEEP + "1" + ")" * DEEP + " }\n",
    "deep_charge_sum": "neuron N(v_reset = 0) { state v = 0; charge v = "
                       + "x + " * 20_000 + "v; fire v >= 1; reset hard }\n"
                       "network n { population a[1] = N }\n",
    "deep_braces": "network n " + "{" * DEEP + "}" * DEEP + "\n",
    "long_comment_line": "# " + "x" * 100_000 + "\nnetwork n { population a[1] = LIF }\n",
    "long_number_line": "network n { steps = " + "9" * 100_000 + " }\n",
    "long_fraction_line": "network n { steps = 1." + "0" * 100_000 + " }\n",
    "long_semicolons": "network n { " + ";" * 100_000 + " }\n",
    "long_connect_chain": "network n { input a[1]; population b[1] = LIF; connect a -> b : "
                          + " | ".join(["scale(1)"] * 5_000) + " }\n",
    "long_shape": "network n { input a[" + ", ".join(["1"] * 10_000) + "] }\n",
    "many_networks": "".join(f"network n{i} {{ population a[1] = LIF }}\n"
                             for i in range(500)),
    "many_probes": "network n { population a[1] = LIF; monitor "
                   + ", ".join(["a.v"] * 10_000) + " }\n",
    "huge_numbers": "network n { steps = 99999999999999999999999; seed = 1e999 }\n",
    "huge_shape": "network n { population a[99999999999999999999999] = LIF }\n",
    "huge_shape_product": "network n { population a[65536, 65536, 65536] = LIF }\n",
    "negative_time": "network n { dt = -1 ms }\n",
    "infinite_time": "network n { population a[1] = LIF(refractory = 1e999 ms) }\n",
    "infinite_times": "network n { input i[2]; encoder s = latency(i, t_max = 1e999 ms)\n"
                      "  population a[2] = LIF; connect s -> a via exp_current(tau = 1e999 s) }\n",
    "folded_division_by_zero": "neuron N(v_reset = 0, m = 0) { state v = 0\n"
                               "  charge v = v + x / (1 - 1 / m); fire v >= 1; reset hard }\n"
                               "network n { population a[1] = N }\n",
    "folded_power_overflow": "neuron N(v_reset = 0, g = 1e30) { state v = 0\n"
                             "  charge v = v + x * g ** 20; fire v >= 1; reset hard }\n"
                             "network n { population a[1] = N }\n",
    "folded_complex_power": "neuron N(v_reset = 0, q = -8) { state v = 0\n"
                            "  charge v = v + x * q ** 0.5; fire v >= 1; reset hard }\n"
                            "network n { population a[1] = N }\n",
    "folded_zero_negative_power": "neuron N(v_reset = 0, q = 0) { state v = 0\n"
                                  "  charge v = v + x * q ** -1; fire v >= 1; reset hard }\n"
                                  "network n { population a[1] = N }\n",
    "huge_encoder": "network n { input i[1000]\n"
                    "  encoder g = gaussian_tuning(i, m = 99999999999999999999999) }\n",
    "denormal_dt": "network n { dt = 5e-324 ms; population a[1] = LIF(tau = 1 ms) }\n",
    "nul_bytes": "network n {\x00 population a[1] = LIF }\n",
    "bom": "\ufeffnetwork n { population a[1] = LIF }\n",
    "double_bom": "\ufeff\ufeffnetwork n { population a[1] = LIF }\n",
    "crlf": "network n {\r\n population a[1] = LIF\r\n}\r\n",
    "line_separators": "network n {\u2028population a[1] = LIF\x0c\x1c}\n",
    "unicode_name": "network réseau { population a[1] = LIF }\n",
    "unicode_digits": "network n { steps = ٣ }\n",
    "empty": "",
    "only_comment": "# nothing\n",
    "only_whitespace": " \n\t\r\n" * 1000,
}
HOSTILE_BYTES = {
    "invalid_utf8": b"network n { population a[1] = LIF \xff }\n",
    "truncated_utf8": b"network r\xc3",
    "utf16": "network n { population a[1] = LIF }\n".encode("utf-16"),
    "surrogate_utf8": b"network \xed\xa0\x80 { }\n",
    "overlong_utf8": b"network n \xc0\xaf { }\n",
    "all_bytes": bytes(range(256)),
}
HOSTILE_SNIPPETS = ([v for k, v in HOSTILE_FILES.items() if len(v) < 20_000]
                    + HOSTILE_NAMES + STRINGS
                    + ["\nimport \"/etc/passwd\"\n", "\nimport \"../../x.snn\"\n",
                       "\nimport \"lib.snn\"\n", "(" * DEEP, ")" * DEEP, "x" * 100_000,
                       "-" * DEEP + "1", "\x00", "\ufeff"])
