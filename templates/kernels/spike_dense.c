// snnc: a dense layer whose input s [R, K] is mostly zeros (spikes). Compile with
// -DREAL=float or -DREAL=double.
//
// y = s @ w^T + b and the weight gradient s^T @ g visit only the nonzeros of s: each is
// a sum, per output row, of the rows of another matrix that the nonzeros pick. The
// forward picks rows of w^T by the nonzeros of each row of s (compressed rows); the
// weight gradient picks rows of g by the nonzeros of each column of s (compressed
// columns). spike_dense_gather does both.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef REAL real;
// A tile is LANES vectors of 32 bytes (GCC/Clang vector extensions): the sums of a tile
// stay in registers, so each nonzero costs LANES loads and multiply-adds, and no stores.
typedef real vec __attribute__((vector_size(32)));
typedef real vec_u __attribute__((vector_size(32), aligned(sizeof(real))));  // unaligned
#define LANES 4
#define WIDTH (int)(32 / sizeof(real))
#define TILE (LANES * WIDTH)

// The nonzeros of s [R, K] by row: row r's are index[start[r] .. start[r + 1]) with their
// values. start has R + 1 entries, index and value `capacity`. Returns how many there are,
// or -1 when there are more than `capacity` (then the dense product is faster).
// Two passes over s, both parallel over rows: count (vectorised), then list each row
// without branches into a scratch row, copied to its place.
int64_t spike_dense_rows(const real *s, int64_t R, int64_t K, int64_t capacity,
                         int64_t *start, int32_t *index, real *value, int nthreads) {
    #pragma omp parallel for schedule(static) num_threads(nthreads)
    for (int64_t r = 0; r < R; ++r) {
        int64_t n = 0;
        #pragma omp simd reduction(+:n)
        for (int64_t k = 0; k < K; ++k)
            n += s[r * K + k] != 0;
        start[r + 1] = n;
    }
    start[0] = 0;
    for (int64_t r = 0; r < R; ++r)
        start[r + 1] += start[r];
    if (start[R] > capacity)
        return -1;
    #pragma omp parallel num_threads(nthreads)
    {
        int32_t *row_index = malloc(sizeof(int32_t) * (size_t)K);
        real *row_value = malloc(sizeof(real) * (size_t)K);
        #pragma omp for schedule(static)
        for (int64_t r = 0; r < R; ++r) {
            const real *row = s + r * K;
            int64_t n = 0;
            for (int64_t k = 0; k < K; ++k) {
                row_index[n] = (int32_t)k;
                row_value[n] = row[k];
                n += row[k] != 0;
            }
            memcpy(index + start[r], row_index, sizeof(int32_t) * (size_t)n);
            memcpy(value + start[r], row_value, sizeof(real) * (size_t)n);
        }
        free(row_index);
        free(row_value);
    }
    return start[R];
}

// The same nonzeros by column (a counting sort of the rows): column k's are
// cindex[cstart[k] .. cstart[k + 1]), row numbers in increasing order.
void spike_dense_columns(const int64_t *start, const int32_t *index, const real *value,
                         int64_t R, int64_t K, int64_t *cstart, int32_t *cindex,
                         real *cvalue) {
    for (int64_t k = 0; k <= K; ++k)
        cstart[k] = 0;
    for (int64_t e = 0; e < start[R]; ++e)
        ++cstart[index[e] + 1];
    for (int64_t k = 0; k < K; ++k)
        cstart[k + 1] += cstart[k];
    for (int64_t r = 0; r < R; ++r) {
        for (int64_t e = start[r]; e < start[r + 1]; ++e) {
            const int64_t slot = cstart[index[e]]++;
            cindex[slot] = (int32_t)r;
            cvalue[slot] = value[e];
        }
    }
    for (int64_t k = K; k > 0; --k)  // the fill moved each start to the next column's
        cstart[k] = cstart[k - 1];
    cstart[0] = 0;
}

// dst[d, :] += sum over e in [start[d], start[d + 1]) of value[e] * src[index[e], :], for
// the D rows of dst; src and dst have O columns. Each (row, tile) is summed in registers
// and written once; threads share the (tile, row) pairs, tile-major, so a tile of src
// stays in cache while the rows visit it.
__attribute__((optimize("fp-contract=fast")))  // a GEMM uses FMA too: no order to keep
void spike_dense_gather(const int64_t *start, const int32_t *index, const real *value,
                        const real *src, real *dst, int64_t D, int64_t O, int nthreads) {
    const int64_t full = O / TILE, tiles = (O + TILE - 1) / TILE;
    #pragma omp parallel for schedule(static) collapse(2) num_threads(nthreads)
    for (int64_t tile = 0; tile < tiles; ++tile) {
        for (int64_t d = 0; d < D; ++d) {
            const int64_t o0 = tile * TILE;
            real *out = dst + d * O + o0;
            if (tile < full) {
                vec acc[LANES];
                #pragma GCC unroll 8
                for (int l = 0; l < LANES; ++l)
                    acc[l] = *(const vec_u *)(out + l * WIDTH);
                for (int64_t e = start[d]; e < start[d + 1]; ++e) {
                    const real *from = src + (int64_t)index[e] * O + o0;
                    const real v = value[e];
                    #pragma GCC unroll 8
                    for (int l = 0; l < LANES; ++l)
                        acc[l] += v * *(const vec_u *)(from + l * WIDTH);
                }
                #pragma GCC unroll 8
                for (int l = 0; l < LANES; ++l)
                    *(vec_u *)(out + l * WIDTH) = acc[l];
            } else {  // the last, narrower tile
                for (int64_t e = start[d]; e < start[d + 1]; ++e) {
                    const real *from = src + (int64_t)index[e] * O + o0;
                    for (int64_t o = 0; o < O - o0; ++o)
                        out[o] += value[e] * from[o];
                }
            }
        }
    }
}
