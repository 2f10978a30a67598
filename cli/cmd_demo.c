// probelab demo: the whole pipeline on the bundled model and built-in tasks.
#include <stdio.h>

#include "cli/cli_util.h"
#include "cli/commands.h"

int cmd_demo(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (cli_is_help(argv[i])) return printf("usage: probelab demo [--out DIR]\n"), 0;
    fprintf(stderr, "probelab demo: the bundled model is not built yet\n");
    return 1;
}
