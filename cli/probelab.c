// probelab: instrumented transformer runtime, trace store, probes and viewer. This file only
// dispatches to the subcommands in cli/cmd_*.c.
#include <stdio.h>
#include <string.h>

#include "cli/cli_opts.h"
#include "cli/commands.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"demo", cmd_demo, "run the whole pipeline on the bundled model and built-in tasks"},
    {"info", cmd_info, "print a model's architecture, sizes and tensor table"},
    {"tokenize", cmd_tokenize, "tokenize text with a model's tokenizer"},
    {"generate", cmd_generate, "generate text (greedy or sampled)"},
    {"run", cmd_run, "one forward pass, dumping hook activations to .npy files"},
    {"bench", cmd_bench, "benchmarks, each printed as a ratio against a baseline measured in the same run"},
    {"train", cmd_train, "train the small chain-of-thought model on built-in tasks and export a GGUF"},
    {"plot", cmd_plot, "draw a figure of a store (attention, tokens, analyses) to PNG/SVG/PDF, no display needed"},
    {"view", cmd_view, "GTK4 viewer: browse runs, tokens, attention and analyses of a store"},
    {"tasks", cmd_tasks, "built-in reasoning tasks: list, generate datasets, check dataset files"},
    {"trace", cmd_trace, "run a model over a dataset, recording tokens, labels and activations into a store"},
    {"runs", cmd_runs, "list the runs of a trace store (--hooks: recorded hooks and analyses)"},
    {"show", cmd_show, "print one run of a store: labels, tokens, segments, logprobs"},
    {"store", cmd_store, "check a store: every index row against the schema and the tensor files (store check S.db)"},
    {"label", cmd_label, "add or update run labels from a CSV or JSONL file (by run id or example id)"},
    {"export", cmd_export, "export a design matrix from a store to .npy or .safetensors"},
    {"probe", cmd_probe, "linear probes over a store: train (layer sweep with CV and baselines), apply, list, show"},
    {"precot", cmd_precot, "pre-CoT analysis: answer decoding by layer, steering vs orthogonal control, CoT taxonomy"},
    {"lens", cmd_lens, "logit lens of a stored run: top tokens and the gold answer's rank by layer"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: probelab COMMAND [options]   (probelab COMMAND --help for details)\n"
                 "Exit status: 0 success, 1 failure, 2 usage error, 130 interrupted (Ctrl-C).\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n  --version  print the version\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) return usage(stdout), CLI_EXIT_OK;
    if (strcmp(argv[1], "--version") == 0) return cli_print_version(stdout), CLI_EXIT_OK;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "probelab: unknown command '%s' (probelab --help lists the commands)\n", argv[1]);
    return CLI_EXIT_USAGE;
}
