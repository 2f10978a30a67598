// The logistic objective of probes/linear/logreg.h evaluated in one pass over X. Two sgemm calls
// (X·Wᵀ, then Gᵀ·X) read all of X twice per gradient, and with k ≈ 10 outputs each is bound by
// memory, not arithmetic. Here each thread walks its rows in blocks that stay in L2: logits of the
// block, softmax, loss and dL/dlogits, then the block's contribution to the gradient, read from
// cache. Block sums go into double accumulators per chunk of rows (at most 16 chunks, shared out
// to the threads as they come free), added in chunk order at the end: as accurate as the sgemm
// path (float products, fewer float additions in a row), and the same bits for any thread count.
#ifndef PL_PROBE_LOGREG_FUSED_H
#define PL_PROBE_LOGREG_FUSED_H

#include <stdint.h>

typedef struct pl_logreg_fused pl_logreg_fused;  // opaque: per-thread scratch and accumulators

// Workspace for n rows of d features and n_out outputs (k classes, or 1 for binary) on n_threads
// threads (<= 0: OpenBLAS's thread count, so OPENBLAS_NUM_THREADS governs both paths). *ws is owned
// by the caller (pl_logreg_fused_free). Returns 0, or -1 with pl_errmsg() on no memory.
int pl_logreg_fused_new(pl_logreg_fused **ws, int64_t n, int d, int n_out, int n_threads);

// Threads the workspace uses (at most one per row block).
int pl_logreg_fused_threads(const pl_logreg_fused *ws);

// L(params) and, if grad is not NULL, its gradient, exactly as pl_logreg_loss() defines them:
// params = [W (n_out × d) row-major, b (n_out)], x[n × d] standardized, y[n] class indices,
// row_weight[n] or NULL, binary: one sigmoid output. If a thread cannot start, the others (at
// least the caller's) do its share.
double pl_logreg_fused_eval(pl_logreg_fused *ws, double *grad, const double *params, const float *x,
                            const int32_t *y, const float *row_weight, int binary, double lambda);

// Free the workspace (NULL is fine).
void pl_logreg_fused_free(pl_logreg_fused *ws);

#endif
