// probelab: instrumented transformer runtime, trace store, probes and viewer. This file only
// dispatches to the subcommands in cli/cmd_*.c.
#include <stdio.h>
#include <string.h>

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
    {"tasks", cmd_tasks, "built-in reasoning tasks: list, generate datasets, check dataset files"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: probelab COMMAND [options]   (probelab COMMAND --help for details)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "probelab: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
