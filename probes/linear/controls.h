// Controls that can refute a probe (arrays only; the trace-store wiring is probes/probe_store.c):
// - input-only design matrices: bag of tokens, positional one-hot of the prompt, categorical
//   metadata; a probe on them is "what the input alone explains";
// - labels shuffled across groups (a probe trained on them is the shuffled-label control);
// - a random direction drawn from the activations' own covariance, orthogonal to w (the matched
//   steering control: the isotropic one ignores that real residuals have a few high-variance axes);
// - mean and standard deviation over repeated splits.
#ifndef PL_PROBE_CONTROLS_H
#define PL_PROBE_CONTROLS_H

#include <stdint.h>

// Token sequences in CSR form: row i is ids[off[i] .. off[i+1]).

// Bag of tokens: one column per distinct token id present in any row, the count of that id in
// the row. *x is malloc'd [n × *d] (caller frees). Returns 0, or -1 with pl_errmsg().
int pl_input_bag_of_tokens(float **x, int *d, const int32_t *ids, const int64_t *off, int64_t n);

// Positional one-hot: one column per distinct (position, token id) pair present in any row, 1 if
// the row holds that id at that position (positions counted from the start). *x as above.
int pl_input_positional(float **x, int *d, const int32_t *ids, const int64_t *off, int64_t n);

// Categorical metadata: n_fields integer fields per row (values[i * n_fields + f]); one column per
// distinct (field, value) pair, so a linear probe can fit any function of each field. Fields whose
// value is constant over the rows add nothing and get no column. *d may be 0 (no information).
int pl_input_categorical(float **x, int *d, const int32_t *values, int64_t n, int n_fields);

// Labels shuffled across groups: every group takes, for all its rows, the label of the first row
// of another group (a seeded permutation of the groups), so the label multiset per group size is
// kept and any relation between rows and labels is destroyed. groups NULL = one group per row.
int pl_shuffle_labels(int32_t *out, const int32_t *y, const int32_t *groups, int64_t n, uint64_t seed);

// A seeded isotropic random direction orthogonal to w[d] with the same L2 norm into out[d]
// (Gram-Schmidt in double, twice). Returns 0, or -1 if w is zero.
int pl_orthogonal_control(float *out, const float *w, int d, uint64_t seed);

// A random direction with the activations' covariance: g = Σ_i z_i (x_i - mean) / sqrt(n - 1)
// with z_i ~ N(0, 1) (a draw from N(0, Σ̂) without forming Σ̂), made orthogonal to w[d] (Gram-Schmidt
// in double, twice) and scaled to |w|, into out[d]. x is [n × d]. Returns 0, or -1 if w is zero,
// n < 2 or the draw lies in span(w).
int pl_covariance_control(float *out, const float *w, const float *x, int64_t n, int d, uint64_t seed);

// Mean and sample standard deviation (NaN for n < 2) of the finite values of v[n].
void pl_mean_sd(double *mean, double *sd, const double *v, int n);

#endif
