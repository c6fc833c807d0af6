// The nonzeros of a node's values, for event-driven propagation (included by the
// clock loop, loop.c.j2, and softbp's compiled run, bptt.c.j2). Needs `real`.
// Whether any of x[0 .. 32) is not 0 (NaN counts, -0 does not): their bits OR-ed, the
// sign's dropped once at the end, which vectorises where comparisons of floats do not.
static inline uint64_t any_of(const real *restrict x) {
    if (sizeof(real) == sizeof(uint32_t)) {
        uint32_t any = 0;
        for (int k = 0; k < 32; ++k) {
            uint32_t bits;
            memcpy(&bits, x + k, sizeof bits);
            any |= bits;
        }
        return (uint32_t)(any << 1);
    }
    uint64_t any = 0;
    for (int k = 0; k < 32; ++k) {
        uint64_t bits;
        memcpy(&bits, x + k, sizeof bits);
        any |= bits;
    }
    return any << 1;
}

// The indices of x's nonzeros, ascending, into `out`; returns their count. Spikes are
// rare: a block of 32 without any costs one vectorised test, and a block with some is
// compared at once into a mask whose set bits are listed.
static int64_t nonzeros(const real *restrict x, int64_t n, int64_t *restrict out) {
    int64_t count = 0, j = 0;
    for (; j + 32 <= n; j += 32) {
        if (!any_of(x + j))
            continue;
        uint32_t mask = 0;
        for (int k = 0; k < 32; ++k)
            mask |= (uint32_t)(x[j + k] != 0) << k;
        for (; mask; mask &= mask - 1)
            out[count++] = j + __builtin_ctz(mask);
    }
    for (; j < n; ++j)
        if (x[j] != 0)
            out[count++] = j;
    return count;
}
