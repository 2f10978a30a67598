// `probelab view S.db`: the GTK4 viewer over a trace store.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_opts.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "gui/plot/figures_data.h"
#include "runtime/store/store.h"
#include "runtime/base/error.h"
#ifdef PL_HAVE_GTK
#include "gui/viewer/viewer.h"
#endif

// "WxH" of at least 320x240.
static int parse_window_size(const char *value, void *out) {
    int *wh = out;
    char extra;
    if (sscanf(value, "%dx%d%c", &wh[0], &wh[1], &extra) != 2 || wh[0] < 320 || wh[1] < 240 || wh[0] > 16384 ||
        wh[1] > 16384)
        return pl_fail("expected WxH between 320x240 and 16384x16384");
    return 0;
}

int cmd_view(int argc, char **argv) {
    const char *store = NULL, *screenshot = NULL, *analysis = NULL;
    int64_t run = 0;
    int page = 0, theme = 0, size[2] = {0, 0};
    static const char *const pages[] = {"tokens", "attention", "analyses", NULL};
    static const char *const themes[] = {"auto", "light", "dark", NULL};
    bool page_given = false;
    const cli_option opts[] = {
        {"--run", CLI_INT, &run, "R", .help = "the run to select at start", .def = "the first", .min = 1,
         .max = (double)INT64_MAX},
        {"--page", CLI_ENUM, &page, "PAGE", .help = "the page to show at start", .def = "tokens", .choices = pages,
         .seen = &page_given},
        {"--analysis", CLI_STRING, &analysis, "NAME", .help = "the analysis to show on the analyses page"},
        {"--size", CLI_CUSTOM, size, "WxH", .help = "window size", .def = "1280x800", .parse = parse_window_size},
        {"--theme", CLI_ENUM, &theme, "THEME", .help = "colours", .def = "auto", .choices = themes},
        {"--screenshot", CLI_STRING, &screenshot, "OUT.png", .help = "render the window once shown, write it, and quit"},
        {0}};
    const cli_positional pos[] = {{"S.db", &store, "the store", true}, {0}};
    const cli_spec spec = {
        "view", opts, pos,
        .summary = "Browse a trace store: runs (filter by task, correctness, text), tokens coloured by a score,\n"
                   "attention heatmaps and thumbnails, and analyses. The store is opened read-only and re-read\n"
                   "when a running `probelab trace` adds runs. Keys: Up/Down or j/k runs, Left/Right or h/l query\n"
                   "position, Page Up/Down token window, [ ] layer, { } head, 1/2/3 pages, Ctrl+F filter, Ctrl+Q quit."};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    // What the window would only show as a message is a failure here: the store must open and the
    // run asked for must exist.
    pl_vstore *v;
    if (pl_vstore_open(&v, store) != 0) return cli_fail();
    if (run > 0) {
        pl_run_info r;
        pl_store *st = pl_vstore_store(v);
        if (pl_store_get_run(st, run, &r) != 0) {
            cli_error("%s", pl_store_errmsg(st));
            pl_vstore_close(v);
            return CLI_EXIT_FAIL;
        }
    }
    pl_vstore_close(v);
#ifndef PL_HAVE_GTK
    (void)screenshot, (void)analysis, (void)page_given;
    return cli_error("this probelab was built without GTK4 (install libgtk-4-dev and rebuild); `probelab plot` draws "
                     "the same figures to files");
#else
    pl_viewer_opts o = {.store_path = store, .screenshot = screenshot, .width = size[0], .height = size[1], .run = run,
                        .page = page_given ? pages[page] : NULL, .analysis = analysis, .theme = theme - 1};
    return pl_viewer_run(&o);
#endif
}
