// probelab bench WHAT: benchmarks printed as ratios against a baseline measured in the same run.
#include <stdio.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"

static const char bench_usage[] = "usage: probelab bench forward [MODEL]\n";

int cmd_bench(int argc, char **argv) {
    if (argc < 2 || cli_is_help(argv[1])) return printf("%s", bench_usage), argc < 2 ? 2 : 0;
    fprintf(stderr, "probelab bench: unknown benchmark '%s'\n%s", argv[1], bench_usage);
    return 2;
}
