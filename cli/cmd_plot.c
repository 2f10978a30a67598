// `probelab plot S.db --figure NAME -o out.png|svg|pdf`: the viewer's figures as files, no display.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_opts.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "gui/plot/figures.h"
#include "runtime/base/error.h"

// "FIRST:COUNT" into int64_t[2].
static int parse_window(const char *value, void *out) {
    int64_t *w = out;
    long long lo, n;
    char extra;
    if (sscanf(value, "%lld:%lld%c", &lo, &n, &extra) != 2 || lo < 0 || n < 0 || lo > INT32_MAX || n > INT32_MAX)
        return pl_fail("expected FIRST:COUNT, two integers >= 0, e.g. 0:256");
    w[0] = lo, w[1] = n;
    return 0;
}

// "WxH" between 16 and 16384 into int[2].
static int parse_size(const char *value, void *out) {
    int *wh = out;
    char extra;
    if (sscanf(value, "%dx%d%c", &wh[0], &wh[1], &extra) != 2 || wh[0] < 16 || wh[1] < 16 || wh[0] > 16384 || wh[1] > 16384)
        return pl_fail("expected WxH between 16 and 16384, e.g. 1280x800");
    return 0;
}

int cmd_plot(int argc, char **argv) {
    const char *store = NULL, *figure = NULL, *output = NULL, *score = NULL, *series = NULL;
    int64_t run = 0, layer = 0, head = 0, model_id = 0, window[2] = {0, 0};
    int size[2] = {1280, 800}, theme = 0;
    bool json = false;
    static const char *const themes[] = {"light", "dark", NULL};
    const cli_option opts[] = {
        {"--figure", CLI_STRING, &figure, "NAME",
         .help = "attention, attention-grid, tokens, or an analysis of the store; `list` prints what it can draw"},
        {"--output", CLI_STRING, &output, "FILE", .help = "output file; the extension (.png, .svg, .pdf) picks the format",
         .aliases = {"-o"}},
        {"--series", CLI_STRING, &series, "GLOB", .help = "analyses: draw only the series matching GLOB (e.g. 'arith/*')"},
        {"--run", CLI_INT, &run, "R", .help = "run for attention/tokens figures", .def = "the first run", .min = 1,
         .max = (double)INT64_MAX},
        {"--layer", CLI_INT, &layer, "L", .help = "attention layer", .def = "0", .min = 0, .max = 4096},
        {"--head", CLI_INT, &head, "H", .help = "attention head", .def = "0", .min = 0, .max = 4096},
        {"--score", CLI_STRING, &score, "S", .help = "token colouring: logprob, entropy or probe:NAME", .def = "the first probe"},
        {"--tokens", CLI_CUSTOM, window, "FIRST:COUNT", .help = "window of a long run for the tokens figure",
         .def = "all, up to 2048", .parse = parse_window},
        {"--size", CLI_CUSTOM, size, "WxH", .help = "pixels for PNG, points for SVG/PDF", .def = "1280x800", .parse = parse_size},
        {"--theme", CLI_ENUM, &theme, "THEME", .help = "colours", .def = "light", .choices = themes},
        {"--json", CLI_FLAG, &json, .help = "with --figure list: print [{\"name\", \"title\"}]"},
        CLI_MODEL_ID_OPTION(model_id),
        {0}};
    const cli_positional pos[] = {{"S.db", &store, "the store", true}, {0}};
    const cli_spec spec = {"plot", opts, pos,
                           .usage = "S.db --figure NAME [options] -o OUT.png|svg|pdf\n"
                                    "       probelab plot S.db --figure list [--json]",
                           .summary = "Draw a figure of a trace store to a PNG, SVG or PDF file with the viewer's drawing code."};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    long tok_lo = (long)window[0], tok_n = (long)window[1];
    int width = size[0], height = size[1];
    if (!figure) return cli_usage_error("missing --figure NAME (--figure list shows them)");
    int is_list = strcmp(figure, "list") == 0;
    if (!is_list && !output) return cli_usage_error("missing -o OUT.png|svg|pdf");

    pl_vstore *v;
    if (pl_vstore_open(&v, store) != 0) return cli_fail();
    int rc = 1;
    if (is_list) {
        pl_figure_entry *e;
        int n;
        if (pl_figures_list(v, &e, &n) != 0) goto done;
        if (json) {
            json_t *a = json_array();
            for (int i = 0; i < n; i++) json_array_append_new(a, json_pack("{s:s, s:s}", "name", e[i].name, "title", e[i].title));
            free(e);
            rc = cli_print_json(a);
            pl_vstore_close(v);
            return rc;
        }
        if (n == 0) printf("%s: empty store: no runs and no analyses yet\n", store);
        for (int i = 0; i < n; i++) printf("%-28s %s\n", e[i].name, e[i].title);
        free(e);
        rc = 0;
        goto done;
    }
    pl_figure_opts o = pl_figure_opts_default();
    o.run = run;
    o.model_id = model_id;
    o.layer = (int)layer;
    o.head = (int)head;
    o.score = score;
    o.series = series;
    o.token_lo = tok_lo;
    o.token_count = tok_n;
    o.theme = theme == 1 ? PL_THEME_DARK : PL_THEME_LIGHT;
    pl_figure *fig;
    if (pl_figures_build(&fig, v, figure, &o) != 0) goto done;
    int save = pl_plot_save(fig, output, width, height);
    pl_figure_free(fig);
    if (save != 0) goto done;
    rc = 0;
done:
    if (rc != 0) cli_fail();
    pl_vstore_close(v);
    return rc;
}
