"""Fuzzing the front end: whatever a `.snn` file contains, only `SnnError` escapes.

LANGUAGE.md §7: "No input file, however malformed, produces a Python traceback."
Real `.snn` files (samples/*.snn, the stdlib, and the small networks below) are
mutated at the token level and at the byte level, written to a fresh temporary
folder, and given to `snnc.compiler.frontend` (parse -> check -> graph ->
passes) and to `snnc check` (`snnc.cli.main`). The front end may accept the
file or raise `SnnError`; the CLI must return 0 or 1, and 1 exactly when the
front end raised.

Imports: each example's folder holds only what the test writes there (the
file under test, `lib.snn`, the files a sample imports, an empty folder
`sub/`), and the loader refuses imports that leave the main file's folder, so
no mutation reads anything else; `test_out_of_tree_imports_are_refused` checks
that refusal directly.

The default run makes 10 100 fuzz cases: 2100 drawn by hypothesis (without shrinking
failures, to stay within a minute) and 8000 drawn the same way from a seeded
`random.Random` (test_fuzz_seeded_sweep), which costs a tenth as much per case;
`pytest -m slow` runs the hypothesis tests with 20000 cases each and shrinks what
fails to a minimal input. The corpus and the mutations are in fuzz_corpus.py, shared
with the whole-pipeline fuzzer (test_fuzz_pipeline.py).
"""
from __future__ import annotations

import contextlib
import io
import random
import signal
import tempfile
import threading
from pathlib import Path

import pytest
from fuzz_corpus import (
    EMBEDDED,
    HOSTILE_BYTES,
    HOSTILE_FILES,
    HOSTILE_SNIPPETS,
    LIB,
    SEEDS,
    HypothesisDraw,
    RandomDraw,
    mutate_bytes,
    mutate_tokens,
    seed_tokens,
)
from hypothesis import HealthCheck, Phase, currently_in_test_context, given, note, settings
from hypothesis import strategies as st

from snnc import cli
from snnc.compiler import frontend
from snnc.errors import SnnError

# ---------------------------------------------------------------------------------------
# Running the front end and the CLI on one input.

def _write_tree(folder: Path, content: bytes, extras: dict[str, bytes]) -> Path:
    (folder / "sub").mkdir()
    (folder / "lib.snn").write_text(LIB, encoding="utf-8")
    for rel, blob in extras.items():
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob)
    path = folder / "net.snn"
    path.write_bytes(content)
    return path


def _cli_check(path: Path) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["check", str(path)])
    return code, out.getvalue() + err.getvalue()


# A file of a few kB takes milliseconds; the hostile ones (100k-character lines, 5000-deep
# nesting) well under a second. Anything slower is a denial of service, and a bug.
TIME_LIMIT_S = 10


class _TooSlow(BaseException):
    """Raised by the alarm; a BaseException so that no `except Exception` in snnc eats it."""


@contextlib.contextmanager
def _time_limit(seconds: float, what: str):
    """Fail when the block runs longer than `seconds` (main thread on POSIX only)."""
    if not hasattr(signal, "setitimer") \
            or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum, frame):
        raise _TooSlow()
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _TooSlow:
        raise AssertionError(f"{what} took more than {seconds} s") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_input(content: bytes, extras: dict[str, bytes] | None = None) -> None:
    """Only SnnError escapes `frontend`; `snnc check` exits 1 then, 0 otherwise."""
    if currently_in_test_context():
        note(f"input ({len(content)} bytes): {content[:3000]!r}")
    with tempfile.TemporaryDirectory(prefix="snnc-fuzz-") as tmp:
        path = _write_tree(Path(tmp), content, extras or {})
        with _time_limit(TIME_LIMIT_S, "frontend()"):
            try:
                frontend(path, allowed=())
                expected = cli.EXIT_OK
            except SnnError as err:
                err.render()
                expected = cli.EXIT_INPUT
            # Any other exception propagates here: it is a bug in snnc.
        with _time_limit(TIME_LIMIT_S, "snnc check"):
            code, output = _cli_check(path)
        assert code in (cli.EXIT_OK, cli.EXIT_INPUT), f"snnc check exited {code}: {output}"
        assert code == expected, (f"snnc check exited {code} but frontend() "
                                  f"{'accepted' if expected == 0 else 'refused'} the file: "
                                  f"{output}")


# ---------------------------------------------------------------------------------------
# The seeds themselves.

@pytest.mark.parametrize("name", sorted(EMBEDDED))
def test_embedded_seed_passes_check(name, tmp_path):
    path = _write_tree(tmp_path, EMBEDDED[name].encode(), {})
    graphs = frontend(path)
    if name != "lib.snn":
        assert graphs, f"{name} has no network"
    code, output = _cli_check(path)
    assert code == 0, output


def test_corpus_has_the_samples_and_stdlib():
    names = [name for name, _, _ in SEEDS]
    assert "stdlib/neurons.snn" in names
    assert len(names) >= len(EMBEDDED) + 1


@pytest.mark.parametrize("index", range(len(SEEDS)), ids=[s[0] for s in SEEDS])
def test_unmutated_seed_only_snnerror(index):
    _, content, extras = SEEDS[index]
    check_input(content, extras)


# ---------------------------------------------------------------------------------------
# Fuzz tests (each defined twice: the default run and the slow one).

FUZZ_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
               HealthCheck.large_base_example]


def _fuzz_settings(n: int, shrink: bool):
    # The default run does not shrink: shrinking a failure in a 5 kB sample can take
    # minutes, and the failing input is printed anyway (see `note` in check_input). The
    # slow run shrinks, for a minimal reproducer.
    phases = [p for p in Phase if shrink or p not in (Phase.shrink, Phase.explain)]
    return settings(max_examples=n, deadline=None, suppress_health_check=FUZZ_HEALTH,
                    print_blob=True, phases=phases)


seed_index = st.integers(0, len(SEEDS) - 1)


# Each kind of case: (draw, seed index) -> (file content, the files beside it).

def _token_case(draw, index):
    _, content, extras = SEEDS[index]
    tokens, names = seed_tokens(index)
    text = "".join(mutate_tokens(draw, list(tokens), names))
    return text.encode("utf-8", errors="surrogatepass"), extras


def _byte_case(draw, index):
    _, content, extras = SEEDS[index]
    return mutate_bytes(draw, content), extras


def _mixed_case(draw, index):
    _, content, extras = SEEDS[index]
    tokens, names = seed_tokens(index)
    text = "".join(mutate_tokens(draw, list(tokens), names))
    return mutate_bytes(draw, text.encode("utf-8", errors="surrogatepass")), extras


def _hostile_case(draw, index):
    """A hostile token or line spliced into a real file."""
    _, content, extras = SEEDS[index]
    tokens, names = seed_tokens(index)
    tokens = list(tokens)
    hostile = draw.sampled_from(HOSTILE_SNIPPETS)
    at = draw.integers(0, len(tokens))
    tokens[at:at] = [hostile]
    if draw.booleans():
        tokens = mutate_tokens(draw, tokens, names)
    return "".join(tokens).encode("utf-8", errors="surrogatepass"), extras


def _make(case, name: str, n: int, slow: bool = False):
    def test(data, index):
        check_input(*case(HypothesisDraw(data), index))
    # Distinct names give each test its own entries in hypothesis's example database.
    test.__name__ = test.__qualname__ = name
    test.__doc__ = case.__doc__
    test = _fuzz_settings(n, shrink=slow)(given(data=st.data(), index=seed_index)(test))
    return pytest.mark.slow(test) if slow else test


# ---------------------------------------------------------------------------------------
# Hostile inputs, whole files (HOSTILE_FILES and HOSTILE_BYTES are in fuzz_corpus.py).

@pytest.mark.parametrize("name", sorted(HOSTILE_FILES))
def test_hostile_file(name):
    check_input(HOSTILE_FILES[name].encode("utf-8"))


@pytest.mark.parametrize("name", sorted(HOSTILE_BYTES))
def test_hostile_bytes(name):
    check_input(HOSTILE_BYTES[name])


@pytest.mark.parametrize("target", ["/etc/passwd", "../x.snn", "../../x.snn",
                                    "sub/../../x.snn", "./../x.snn"])
def test_out_of_tree_imports_are_refused(target, tmp_path):
    """An import that leaves the main file's folder is refused even when the file exists."""
    main_dir = tmp_path / "a" / "b"
    main_dir.mkdir(parents=True)
    (main_dir / "sub").mkdir()
    for outside in (tmp_path / "x.snn", tmp_path / "a" / "x.snn"):
        outside.write_text("neuron Outside(v_reset = 0) { state v = 0; charge v = x\n"
                           "  fire v >= 1; reset hard }\n", encoding="utf-8")
    path = main_dir / "net.snn"
    path.write_text(f'import "{target}"\nnetwork n {{ population a[1] = Outside }}\n',
                    encoding="utf-8")
    with pytest.raises(SnnError, match="refused"):
        frontend(path)
    code, output = _cli_check(path)
    assert code == 1 and "refused" in output


# ---------------------------------------------------------------------------------------
# The same four kinds of case from a seeded random.Random (RandomDraw): hypothesis costs
# 5 to 15 ms per case to draw (more as a run grows: 10 000 of its cases take three
# minutes), a seeded draw 0.3 ms, so these make most of the default run's cases.

SWEEP_CASES, SWEEP_CHUNKS = 8_000, 8
KINDS = (_token_case, _byte_case, _mixed_case, _hostile_case)


def sweep_case(i: int) -> tuple[str, bytes, dict[str, bytes]]:
    """Case `i` of the sweep: (what it is, file content, files beside it)."""
    rng = random.Random(f"snnc front-end sweep {i}")
    kind = rng.choices(KINDS, weights=(9, 5, 4, 3))[0]  # as the hypothesis tests' counts
    index = rng.randrange(len(SEEDS))
    return f"{kind.__name__} of {SEEDS[index][0]}", *kind(RandomDraw(rng), index)


def check_front_end(content: bytes, extras: dict[str, bytes]) -> None:
    """check_input without `snnc check` (2.5 ms of CPU per case instead of 5.9: the CLI runs
    the front end again, and builds its argument parser each time): only SnnError escapes
    `frontend`, and it renders. The CLI's side is fuzzed by the hypothesis tests."""
    with tempfile.TemporaryDirectory(prefix="snnc-fuzz-") as tmp:
        path = _write_tree(Path(tmp), content, extras)
        with _time_limit(TIME_LIMIT_S, "frontend()"):
            try:
                frontend(path, allowed=())
            except SnnError as err:
                err.render()


@pytest.mark.parametrize("chunk", range(SWEEP_CHUNKS))
def test_fuzz_seeded_sweep(chunk):
    per = SWEEP_CASES // SWEEP_CHUNKS
    for i in range(chunk * per, (chunk + 1) * per):
        what, content, extras = sweep_case(i)
        try:
            check_front_end(content, extras)
        except BaseException as exc:
            raise AssertionError(f"sweep_case({i}), {what}: {exc}\n"
                                 f"input ({len(content)} bytes): {content[:3000]!r}") from exc


# Default run: 2100 cases drawn by hypothesis and 8000 seeded ones.
test_fuzz_token_mutations = _make(
    _token_case, "test_fuzz_token_mutations", 900)
test_fuzz_byte_mutations = _make(
    _byte_case, "test_fuzz_byte_mutations", 500)
test_fuzz_token_and_byte_mutations = _make(
    _mixed_case, "test_fuzz_token_and_byte_mutations", 400)
test_fuzz_hostile_splices = _make(
    _hostile_case, "test_fuzz_hostile_splices", 300)

# `pytest -m slow`: 20000 cases each.
test_fuzz_token_mutations_slow = _make(
    _token_case, "test_fuzz_token_mutations_slow", 20_000, slow=True)
test_fuzz_byte_mutations_slow = _make(
    _byte_case, "test_fuzz_byte_mutations_slow", 20_000, slow=True)
test_fuzz_token_and_byte_mutations_slow = _make(
    _mixed_case, "test_fuzz_token_and_byte_mutations_slow", 20_000, slow=True)
test_fuzz_hostile_splices_slow = _make(
    _hostile_case, "test_fuzz_hostile_splices_slow", 20_000, slow=True)
