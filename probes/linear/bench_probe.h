// `probelab bench probe`: time a multinomial L2 logistic-regression fit on synthetic data against
// the bare sgemm work of the same number of gradient evaluations.
#ifndef PL_PROBE_BENCH_H
#define PL_PROBE_BENCH_H

#include <stdint.h>
#include <stdio.h>

// The benchmark's synthetic data: k Gaussian class means (0.12 · N(0, 1) per feature) plus unit
// noise, classes uniform, seeded. x[n × d] and y[n] (class indices) are caller-allocated.
void pl_bench_probe_data(float *x, int32_t *y, int64_t n, int d, int k, uint64_t seed);

// Fit n = 20000, d = 512, 10 classes (lambda 1e-3, gtol 1e-4), print fit time, iterations, held-out
// accuracy on 5000 more rows, and the time of the same number of gradient evaluations done as bare
// sgemm (X·Wᵀ and Gᵀ·X) with their ratio, and the fused kernel alone for those evaluations, to out. If the environment variable
// PL_BENCH_PROBE_EXPORT names a directory, also write x_train.npy, y_train.npy, x_test.npy,
// y_test.npy and bench_probe.json there for tests/bench_probe_sklearn.py. Returns 0, or -1 with
// pl_errmsg().
int pl_bench_probe(FILE *out);

#endif
