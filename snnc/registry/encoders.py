"""Encoders: values (or nothing) -> spikes. `sources` names the parameters that take an
input; `shape` gives the encoder's shape from its input's (None: the input's own)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from snnc.errors import Pos, SnnError
from snnc.ir.values import Symbol
from snnc.registry.core import EVENT, LOG_LATENCY_T_MAX, STEPPED, P, Signature, ordered, table

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Encoder(Signature):
    sources: tuple[str, ...] = ()
    shape: Callable[[Shape, Mapping], Shape] | None = None
    # what it can send: "spikes" ([T, B, *shape] trains), "times" ([B, *shape] steps)
    produces: tuple[str, ...] = ("spikes",)
    backends: frozenset[str] = STEPPED


def _latency(p: Mapping, at: Callable[[str], Pos]) -> None:
    if p["mode"].name == "log" and p["t_max"] > LOG_LATENCY_T_MAX:
        raise SnnError(f"with mode = log, 't_max' must be at most "
                       f"{LOG_LATENCY_T_MAX:.4g} steps, got {p['t_max']:g}", at("t_max"),
                       "it scales values by exp(t_max - 1), which must fit a float32; "
                       "use mode = linear")


def _gaussian_tuning(p: Mapping, at: Callable[[str], Pos]) -> None:
    if p["m"] < 3:
        raise SnnError(f"'m' must be at least 3 tuning curves, got {p['m']}", at("m"),
                       "the curves' width divides the range by m - 2 (Bohte et al. 2002)")
    ordered("x_min", "x_max", strict=True)(p, at)


ENCODERS: dict[str, Encoder] = table(
    Encoder("poisson", (P("x", "source", None), P("rate", "rate", None)), "encoder",
            "P(spike) = value (or rate) at every step", sources=("x",)),
    Encoder("constant", (P("x", "source"),), "encoder", "a spike wherever the value is > 0",
            sources=("x",)),
    Encoder("latency", (P("x", "source"), P("t_max", "time", 20),
                        P("mode", "choice", Symbol("linear"), "linear", "log")), "encoder",
            "one spike per element, earlier for larger values", combination=_latency,
            sources=("x",), produces=("spikes", "times"), backends=STEPPED | {EVENT}),
    Encoder("periodic", (P("pattern", "source"),), "encoder",
            "replays a [T, *] pattern, cycling", sources=("pattern",),
            shape=lambda s, p: s[1:]),
    Encoder("gaussian_tuning", (P("x", "source"), P("m", "int+", 16), P("x_min", "number", 0.0),
                                P("x_max", "number", 1.0), P("t_max", "time", 100)), "encoder",
            "Bohte et al.'s Gaussian receptive fields: m spike times per value",
            combination=_gaussian_tuning, sources=("x",),
            shape=lambda s, p: (*s, p["m"]), produces=("times",), backends=frozenset({EVENT})),
)
