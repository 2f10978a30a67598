// `probelab view S.db`: the GTK4 viewer over a trace store.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "runtime/base/error.h"
#ifdef PL_HAVE_GTK
#include "gui/viewer/viewer.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: probelab view STORE.db [--run R] [--page tokens|attention|analyses] [--analysis NAME]\n"
            "                     [--size WxH] [--theme auto|light|dark] [--screenshot OUT.png]\n"
            "Browse a trace store: runs (filter by task, correctness, text), tokens coloured by a score,\n"
            "attention heatmaps and thumbnails, and analyses. The store is opened read-only and re-read\n"
            "when a running `probelab trace` adds runs. Keys: Up/Down or j/k runs, Left/Right or h/l query\n"
            "position, Page Up/Down token window, [ ] layer, { } head, 1/2/3 pages, Ctrl+F filter, Ctrl+Q quit.\n"
            "  --screenshot OUT.png  render the window once shown, write it, and quit (for tests and docs)\n");
}
#endif

int cmd_view(int argc, char **argv) {
#ifndef PL_HAVE_GTK
    (void)argc;
    (void)argv;
    fprintf(stderr, "probelab: view: this probelab was built without GTK4 (install libgtk-4-dev and rebuild);\n"
                    "          `probelab plot` draws the same figures to files\n");
    return 1;
#else
    pl_viewer_opts o = {.theme = -1};
    const char *value;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) return usage(stdout), 0;
        if (cli_opt(argc, argv, &i, "--screenshot", &value)) {
            if (!(o.screenshot = value)) return pl_fail("--screenshot needs a value"), pl_print_error(), 2;
        } else if (cli_opt(argc, argv, &i, "--page", &value)) {
            if (!(o.page = value)) return pl_fail("--page needs a value"), pl_print_error(), 2;
        } else if (cli_opt(argc, argv, &i, "--analysis", &value)) {
            if (!(o.analysis = value)) return pl_fail("--analysis needs a value"), pl_print_error(), 2;
        } else if (cli_opt(argc, argv, &i, "--run", &value)) {
            long run;
            if (!value || cli_parse_int("--run", value, &run) != 0 || run < 0) return pl_fail("--run takes a run id"), pl_print_error(), 2;
            o.run = run;
        } else if (cli_opt(argc, argv, &i, "--size", &value)) {
            char extra;
            if (!value || sscanf(value, "%dx%d%c", &o.width, &o.height, &extra) != 2 || o.width < 320 || o.height < 240)
                return pl_fail("--size takes WxH, at least 320x240"), pl_print_error(), 2;
        } else if (cli_opt(argc, argv, &i, "--theme", &value)) {
            if (value && strcmp(value, "auto") == 0) o.theme = -1;
            else if (value && strcmp(value, "light") == 0) o.theme = 0;
            else if (value && strcmp(value, "dark") == 0) o.theme = 1;
            else return pl_fail("--theme takes auto, light or dark"), pl_print_error(), 2;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "probelab: view: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else if (!o.store_path) {
            o.store_path = argv[i];
        } else {
            fprintf(stderr, "probelab: view: more than one store given\n");
            return 2;
        }
    }
    if (!o.store_path) {
        usage(stderr);
        return 2;
    }
    return pl_viewer_run(&o);
#endif
}
