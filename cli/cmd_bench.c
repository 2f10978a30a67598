// probelab bench WHAT: benchmarks printed as ratios against a baseline measured in the same run.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "runtime/base/error.h"
#include "probes/linear/bench_probe.h"
#include "runtime/bench/bench.h"
#include "runtime/train/train.h"

static const char bench_usage[] =
    "usage: probelab bench forward [MODEL] [--tokens T] [--decode N]\n"
    "  forward  prefill GFLOP/s vs OpenBLAS sgemm on the model's shapes, decode weight GB/s vs memcpy,\n"
    "           with and without hooks (default model: random-weight llama, ~80M parameters)\n"
    "       probelab bench probe\n"
    "  probe    L-BFGS logistic-regression fit (n=20000, d=512, 10 classes) vs the same gradient work as bare sgemm\n"
    "       probelab bench train\n"
    "  train    training tokens/s and GFLOP/s vs OpenBLAS sgemm on the same shapes\n"
    "       probelab bench store [MODEL] [--mb N]\n"
    "  store    recording MB/s vs fwrite, random-read latency on a >= 1 GB store (--mb, default 1100) vs raw\n"
    "           pread, generation slowdown when recording all resid_post + patterns vs hooks off\n"
    "           (default model: share/models/probelab-cot.gguf, else ../shared/models/stories260K.gguf)\n";

static int bench_store(int argc, char **argv) {
    const char *model = NULL, *v;
    long mb = 1100;
    for (int i = 2; i < argc; i++) {
        if (cli_is_help(argv[i])) return printf("%s", bench_usage), 0;
        else if (cli_opt(argc, argv, &i, "--mb", &v)) { if (cli_parse_int("--mb", v, &mb) || mb < 1) return pl_print_error(), 2; }
        else if (argv[i][0] == '-') return fprintf(stderr, "probelab bench store: unknown option '%s'\n", argv[i]), 2;
        else model = argv[i];
    }
    const char *defaults[] = {"share/models/probelab-cot.gguf", "../shared/models/stories260K.gguf"};
    for (int k = 0; k < 2 && !model; k++)
        if (access(defaults[k], R_OK) == 0) model = defaults[k];
    if (pl_bench_store(stdout, model, NULL, (int)mb) != 0) return pl_print_error(), 1;
    return 0;
}

static int bench_forward(int argc, char **argv) {
    const char *model = NULL, *v;
    long tokens = 256, decode = 32;
    for (int i = 2; i < argc; i++) {
        if (cli_is_help(argv[i])) return printf("%s", bench_usage), 0;
        else if (cli_opt(argc, argv, &i, "--tokens", &v)) { if (cli_parse_int("--tokens", v, &tokens) || tokens < 1) return pl_print_error(), 2; }
        else if (cli_opt(argc, argv, &i, "--decode", &v)) { if (cli_parse_int("--decode", v, &decode) || decode < 1) return pl_print_error(), 2; }
        else if (argv[i][0] == '-') return fprintf(stderr, "probelab bench forward: unknown option '%s'\n", argv[i]), 2;
        else model = argv[i];
    }
    if (pl_bench_forward(stdout, model, (int)tokens, (int)decode) != 0) return pl_print_error(), 1;
    return 0;
}

int cmd_bench(int argc, char **argv) {
    if (argc < 2 || cli_is_help(argv[1])) return printf("%s", bench_usage), argc < 2 ? 2 : 0;
    if (strcmp(argv[1], "forward") == 0) return bench_forward(argc, argv);
    if (strcmp(argv[1], "store") == 0) return bench_store(argc, argv);
    if (strcmp(argv[1], "probe") == 0) return pl_bench_probe(stdout) != 0 ? (pl_print_error(), 1) : 0;
    if (strcmp(argv[1], "train") == 0) return pl_bench_train(stdout) != 0 ? (pl_print_error(), 1) : 0;
    fprintf(stderr, "probelab bench: unknown benchmark '%s'\n%s", argv[1], bench_usage);
    return 2;
}
