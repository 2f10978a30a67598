// `probelab bench store`: write throughput vs fwrite, random-read latency on a >= 1 GB store, and
// the generation slowdown of recording everything vs hooks off, all measured in the same run.
#ifndef PL_STORE_BENCH_H
#define PL_STORE_BENCH_H

#include <stdio.h>

// Prints to out. model_path NULL skips the generation part; tmp_root NULL = /tmp; store_mb <= 0
// means 1100 MB. Temporary files are removed. Returns 0 or -1 (pl_errmsg).
int pl_bench_store(FILE *out, const char *model_path, const char *tmp_root, int store_mb);

#endif
