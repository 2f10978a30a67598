// Benchmarks of the runtime. Each prints its measurements next to a baseline measured in the
// same run (so ratios survive noisy, shared machines) and returns 0, or -1 with pl_errmsg.
#ifndef PL_BENCH_H
#define PL_BENCH_H

#include <stdio.h>

// Forward pass: prefill tokens/s and GFLOP/s vs OpenBLAS sgemm on the model's own shapes; decode
// tokens/s and weight bytes/s vs memcpy of the same bytes; each with and without hooks.
// model_path NULL = a random-weight llama model of about 80M parameters built in memory.
int pl_bench_forward(FILE *out, const char *model_path, int prefill_tokens, int decode_tokens);
// The OpenBLAS core type in use and whether OPENBLAS_CORETYPE forces it (printed by every bench).
void pl_bench_print_blas(FILE *out);

#endif
