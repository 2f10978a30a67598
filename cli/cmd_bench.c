// probelab bench WHAT: benchmarks printed as ratios against a baseline measured in the same run.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_opts.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "runtime/base/error.h"
#include "probes/linear/bench_probe.h"
#include "runtime/bench/bench.h"
#include "runtime/train/train.h"

static int bench_store(int argc, char **argv) {
    const char *model = NULL;
    int64_t mb = 1100;
    const cli_option opts[] = {
        {"--mb", CLI_INT, &mb, "N", .help = "size of the store the random reads run on, in MB", .def = "1100", .min = 1,
         .max = 1 << 20},
        {0}};
    const cli_positional pos[] = {
        {"MODEL", &model, "the model traced (default: share/models/probelab-cot.gguf, else ../shared/models/stories260K.gguf)",
         false},
        {0}};
    const cli_spec spec = {"bench store", opts, pos,
                           .summary = "Recording MB/s vs fwrite, random-read latency on a >= 1 GB store vs raw pread, and the\n"
                                      "generation slowdown when recording all resid_post + patterns vs hooks off."};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    const char *defaults[] = {"share/models/probelab-cot.gguf", "../shared/models/stories260K.gguf"};
    for (int k = 0; k < 2 && !model; k++)
        if (access(defaults[k], R_OK) == 0) model = defaults[k];
    if (pl_bench_store(stdout, model, NULL, (int)mb) != 0) return cli_fail();
    return 0;
}

static int bench_forward(int argc, char **argv) {
    const char *model = NULL;
    int64_t tokens = 256, decode = 32;
    const cli_option opts[] = {
        {"--tokens", CLI_INT, &tokens, "T", .help = "prefill length", .def = "256", .min = 1, .max = 1 << 20},
        {"--decode", CLI_INT, &decode, "N", .help = "decode steps", .def = "32", .min = 1, .max = 1 << 20},
        {0}};
    const cli_positional pos[] = {{"MODEL", &model, "the model (default: a random-weight llama, ~99M parameters)", false}, {0}};
    const cli_spec spec = {"bench forward", opts, pos,
                           .summary = "Prefill GFLOP/s vs OpenBLAS sgemm on the model's shapes and decode weight GB/s vs "
                                      "memcpy,\nwith and without hooks."};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    if (pl_bench_forward(stdout, model, (int)tokens, (int)decode) != 0) return cli_fail();
    return 0;
}

static int bench_probe(int argc, char **argv) {
    const cli_option opts[] = {{0}};
    const cli_spec spec = {"bench probe", opts, NULL,
                           .summary = "L-BFGS logistic-regression fit (n=20000, d=512, 10 classes) vs the same gradient "
                                      "work as bare sgemm."};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    return pl_bench_probe(stdout) != 0 ? cli_fail() : 0;
}

static int bench_train(int argc, char **argv) {
    const cli_option opts[] = {{0}};
    const cli_spec spec = {"bench train", opts, NULL,
                           .summary = "Training tokens/s and GFLOP/s vs OpenBLAS sgemm on the same shapes."};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    return pl_bench_train(stdout) != 0 ? cli_fail() : 0;
}

int cmd_bench(int argc, char **argv) {
    static const cli_subcommand subs[] = {
        {"forward", bench_forward, "prefill and decode throughput vs sgemm / memcpy, with and without hooks"},
        {"store", bench_store, "recording and random-read speed of the trace store vs fwrite / pread"},
        {"probe", bench_probe, "logistic-regression fit vs bare sgemm (and the scikit-learn comparison in README)"},
        {"train", bench_train, "training throughput vs sgemm"},
        {0}};
    return cli_dispatch("bench", "Benchmarks, each printed as a ratio against a baseline measured in the same run.", subs,
                        argc, argv);
}
