// probelab bench WHAT: benchmarks printed as ratios against a baseline measured in the same run.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "runtime/base/error.h"
#include "runtime/bench/bench.h"

static const char bench_usage[] =
    "usage: probelab bench forward [MODEL] [--tokens T] [--decode N]\n"
    "  forward  prefill GFLOP/s vs OpenBLAS sgemm on the model's shapes, decode weight GB/s vs memcpy,\n"
    "           with and without hooks (default model: random-weight llama, ~80M parameters)\n";

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
    fprintf(stderr, "probelab bench: unknown benchmark '%s'\n%s", argv[1], bench_usage);
    return 2;
}
