// snnc: sparse(p)'s products on spikes (snnc/runtime/sparse.py), one call for a whole
// input instead of a dozen tensor operations. Compile with -DREAL=float or -DREAL=double
// and -DINDEX=int32_t or -DINDEX=int64_t (the type of the synapses' indices).
//
// The synapses are compressed rows by source: source i's are offsets[i] .. offsets[i + 1],
// synapse s reaching targets[s] with weight[s]. Both functions visit, row by row and
// source by source ascending, the synapses of each nonzero of rows [R, I] (a NaN counts),
// in the order the PyTorch path adds them in (index_add_ over its event list), so both
// give the same sums bit for bit.
#include <stdint.h>

typedef REAL real;
typedef INDEX index_t;

// out [R, O] (zeros in) += per nonzero rows[r, i] = v: v * weight[s] at targets[s].
void sparse_events_forward(const real *rows, int64_t R, int64_t I, const index_t *offsets,
                           const index_t *targets, const real *weight, int64_t O,
                           real *out) {
    for (int64_t r = 0; r < R; ++r) {
        const real *x = rows + r * I;
        real *y = out + r * O;
        for (int64_t i = 0; i < I; ++i) {
            const real v = x[i];
            if (v == 0)
                continue;
            for (int64_t s = offsets[i]; s < offsets[i + 1]; ++s)
                y[targets[s]] += v * weight[s];
        }
    }
}

// grad_weight [S] (zeros in) += per nonzero rows[r, i] = v: v * grad[r, targets[s]].
void sparse_events_weight_grad(const real *rows, int64_t R, int64_t I,
                               const index_t *offsets, const index_t *targets,
                               const real *grad, int64_t O, real *grad_weight) {
    for (int64_t r = 0; r < R; ++r) {
        const real *x = rows + r * I;
        const real *g = grad + r * O;
        for (int64_t i = 0; i < I; ++i) {
            const real v = x[i];
            if (v == 0)
                continue;
            for (int64_t s = offsets[i]; s < offsets[i + 1]; ++s)
                grad_weight[s] += v * g[targets[s]];
        }
    }
}
