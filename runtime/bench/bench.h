// Benchmarks of the runtime. Each prints its measurements next to a baseline measured in the
// same run (so ratios survive noisy, shared machines) and returns 0, or -1 with pl_errmsg.
#ifndef PL_BENCH_H
#define PL_BENCH_H

#include <stdio.h>

// Forward pass: prefill tokens/s and GFLOP/s vs OpenBLAS sgemm on the model's own shapes; decode
// tokens/s and weight bytes/s vs memcpy of the same bytes; each with and without hooks.
// model_path NULL = a random-weight llama model of about 80M parameters built in memory.
int pl_bench_forward(FILE *out, const char *model_path, int prefill_tokens, int decode_tokens);
// `probelab bench store`: write throughput vs fwrite, random-read latency on a >= 1 GB store, and
// the generation slowdown of recording everything vs hooks off, all measured in the same run.
// Prints to out. model_path NULL skips the generation part; tmp_root NULL = /tmp; store_mb <= 0
// means 1100 MB. Temporary files are removed.
int pl_bench_store(FILE *out, const char *model_path, const char *tmp_root, int store_mb);
// The OpenBLAS core type in use and whether OPENBLAS_CORETYPE forces it (printed by every bench).
void pl_bench_print_blas(FILE *out);

#endif
