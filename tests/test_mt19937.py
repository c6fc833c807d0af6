"""templates/kernels/mt19937.h.j2 and snnc.runtime.mt19937 against PyTorch's CPU generator:
C's uniform draws equal uniform_()'s, bit for bit, from any point of the stream (fresh,
mid-block, with a normal cached), and after put_state PyTorch continues where C stopped,
with a state byte for byte what PyTorch's own draws would have left."""
from __future__ import annotations

import ctypes

import pytest
import torch

from snnc.runtime import mt19937, native
from snnc.templating import templates

needs_cc = pytest.mark.skipif(native.c_compiler() is None, reason="no C compiler on this machine")

HARNESS = """
void draw_double(mt19937_t *g, double *out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = mt_uniform_double(g);
}
void draw_float(mt19937_t *g, float *out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = mt_uniform_float(g);
}
void next_words(mt19937_t *g, uint32_t *out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = mt_next32(g);
}
void fill_words(mt19937_t *g, uint32_t *out, int64_t n) {
    mt_fill32(g, out, n);
}
"""
DRAW = (None, [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64])
SEEDS = (0, 12345, 2**32 + 7, 0x9E3779B97F4A7C15)  # the last two: only the low 32 bits seed
COUNTS = (1, 623, 624, 625, 5000)  # around a regeneration, and several of them


def _after_nothing(g: torch.Generator) -> None:
    pass


def _after_odd(g: torch.Generator) -> None:
    torch.rand(3, generator=g)  # 3 outputs: left 622, next 3


def _after_odd_then_doubles(g: torch.Generator) -> None:
    torch.rand(3, generator=g)
    torch.empty(1001, dtype=torch.float64).uniform_(generator=g)  # 2005 outputs: next 133


def _after_normal(g: torch.Generator) -> None:
    torch.randn(1, dtype=torch.float64, generator=g)  # leaves the second normal cached


HISTORIES = (_after_nothing, _after_odd, _after_odd_then_doubles, _after_normal)


def _generator(seed: int, history) -> torch.Generator:
    g = torch.Generator().manual_seed(seed)
    history(g)
    return g


@pytest.fixture(scope="module")
def harness() -> native.Library:
    source = templates().get_template("kernels/mt19937.h.j2").render() + HARNESS
    library = native.load(source, functions={"draw_double": DRAW, "draw_float": DRAW,
                                             "next_words": DRAW, "fill_words": DRAW},
                          what="the MT19937 test harness", fallback="the test fails")
    assert library is not None
    return library


def _draw_in_c(harness: native.Library, words: torch.Tensor, count: int,
               dtype: torch.dtype) -> torch.Tensor:
    out = torch.empty(count, dtype=dtype)
    draw = harness.draw_double if dtype == torch.float64 else harness.draw_float
    draw(words.data_ptr(), out.data_ptr(), count)
    return out


def _assert_same_stream(ours: torch.Generator, theirs: torch.Generator) -> None:
    """Same state, byte for byte, and the same next draws of each kind."""
    assert torch.equal(ours.get_state(), theirs.get_state())
    assert torch.equal(torch.rand(700, dtype=torch.float64, generator=ours),
                       torch.rand(700, dtype=torch.float64, generator=theirs))
    assert torch.equal(torch.rand(5, generator=ours), torch.rand(5, generator=theirs))
    assert torch.equal(torch.randn(3, dtype=torch.float64, generator=ours),
                       torch.randn(3, dtype=torch.float64, generator=theirs))


@needs_cc
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("count", COUNTS)
@pytest.mark.parametrize("history", HISTORIES, ids=lambda h: h.__name__.strip("_"))
@pytest.mark.parametrize("seed", SEEDS)
def test_c_draws_what_torch_draws_and_torch_continues(harness, seed, history, count, dtype):
    ours, theirs = _generator(seed, history), _generator(seed, history)
    words = mt19937.state_words(ours)
    drawn = _draw_in_c(harness, words, count, dtype)
    assert torch.equal(drawn, torch.empty(count, dtype=dtype).uniform_(generator=theirs))
    mt19937.put_state(ours, words)
    _assert_same_stream(ours, theirs)


@needs_cc
def test_a_stream_that_switches_between_torch_and_c(harness):
    """Chunks drawn alternately by PyTorch and by C, with mixed dtypes, as a run that
    mixes PyTorch steps and compiled steps would, are one stream."""
    ours, theirs = _generator(7, _after_nothing), _generator(7, _after_nothing)
    for step, (count, dtype) in enumerate([(5, torch.float32), (700, torch.float64),
                                           (1, torch.float64), (1250, torch.float32),
                                           (623, torch.float64), (2, torch.float32)]):
        want = torch.empty(count, dtype=dtype).uniform_(generator=theirs)
        if step % 2:
            words = mt19937.state_words(ours)
            got = _draw_in_c(harness, words, count, dtype)
            mt19937.put_state(ours, words)
        else:
            got = torch.empty(count, dtype=dtype).uniform_(generator=ours)
        assert torch.equal(got, want)
    _assert_same_stream(ours, theirs)


def test_the_words_are_torchs_engine_state():
    """The layout read from the blob: MT19937's initialisation from the seed's low 32
    bits, then left/next as PyTorch's engine counts them."""
    g = torch.Generator().manual_seed(2**32 + 5489)
    words = mt19937.state_words(g)
    assert words.dtype == torch.int32 and words.shape == (626,) and words.is_contiguous()
    expected = [5489]
    for i in range(1, 624):
        previous = expected[-1]
        expected.append((1812433253 * (previous ^ (previous >> 30)) + i) & 0xFFFFFFFF)
    assert words[:624].tolist() == [w - 2**32 if w >= 2**31 else w for w in expected]
    assert words[624:].tolist() == [1, 0]  # fresh: the first draw regenerates
    _after_odd_then_doubles(g)
    assert mt19937.state_words(g)[624:].tolist() == [492, 133]  # 2005 = 3 * 624 + 133


def test_put_state_of_unchanged_words_changes_nothing():
    g = _generator(12345, _after_normal)
    before = g.get_state()
    mt19937.put_state(g, mt19937.state_words(g))
    assert torch.equal(g.get_state(), before)


def test_put_state_refuses_what_is_not_an_mt19937_t():
    g = torch.Generator()
    with pytest.raises(ValueError, match="626 int32 words"):
        mt19937.put_state(g, mt19937.state_words(g).to(torch.int64))


@needs_cc
@pytest.mark.parametrize("history", HISTORIES, ids=lambda h: h.__name__)
def test_fill_gives_one_call_per_word(harness, history):
    """mt_fill32 in pieces of every size around a regeneration = mt_next32 word by word,
    and both leave the same state."""
    one, block = (mt19937.state_words(_generator(7, history)) for _ in range(2))
    pieces = (1, 622, 1, 1, 624, 625, 3, 1300)
    expected = torch.empty(sum(pieces), dtype=torch.int32)
    harness.next_words(one.data_ptr(), expected.data_ptr(), len(expected))
    got, at = torch.empty_like(expected), 0
    for n in pieces:
        harness.fill_words(block.data_ptr(), got[at:].data_ptr(), n)
        at += n
    assert torch.equal(got, expected)
    assert torch.equal(block, one)
