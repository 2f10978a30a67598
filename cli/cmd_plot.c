// `probelab plot S.db --figure NAME -o out.png|svg|pdf`: the viewer's figures as files, no display.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "gui/plot/figures.h"
#include "runtime/base/error.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: probelab plot STORE.db --figure NAME [--series GLOB] [--run R] [--layer L --head H] [--score S]\n"
            "                     [--tokens FIRST:COUNT] [--size WxH] [--theme light|dark] -o OUT.png|svg|pdf\n"
            "       probelab plot STORE.db --figure list\n"

            "Draw a figure of a trace store to a PNG, SVG or PDF file with the viewer's drawing code.\n"
            "  --figure NAME        attention, attention-grid, tokens, or the name of an analysis in the store;\n"
            "                       `--figure list` prints the figures this store can draw\n"
            "  --series GLOB        analyses: draw only the series matching GLOB (e.g. 'arith/*', '*/answer');\n"
            "                       default: the series the analysis shows by default (usually all)\n"
            "  --run R              run for attention/tokens figures (default: the first run)\n"
            "  --layer L, --head H  attention layer and head (default 0, 0)\n"
            "  --score S            token colouring: logprob, entropy or probe:NAME (default: first probe)\n"
            "  --tokens FIRST:COUNT window of a long run for the tokens figure (default: all, up to 2048)\n"
            "  --size WxH           pixels for PNG, points for SVG/PDF (default 1280x800)\n"
            "  --theme light|dark   colours (default light)\n"
            "  -o, --output FILE    output file; the extension picks the format\n"
            "  --model-id N         run figures: the first run of model N (needed without --run when the store\n"
            "                       holds several models; probelab runs S.db --models lists them)\n");
}

static int usage_error(const char *msg) {
    pl_fail("plot: %s", msg);
    pl_print_error();
    usage(stderr);
    return 2;
}

static int parse_long(const char *opt, const char *value, long *out) {
    if (!value) return pl_fail("%s needs a value", opt);
    return cli_parse_int(opt, value, out);
}

int cmd_plot(int argc, char **argv) {
    const char *store = NULL, *figure = NULL, *output = NULL, *score = NULL, *series = NULL, *value;
    long run = 0, layer = 0, head = 0, width = 1280, height = 800;
    int64_t model_id = 0;
    long tok_lo = 0, tok_n = 0;
    pl_theme theme = PL_THEME_LIGHT;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) return usage(stdout), 0;
        int bad = 0;
        if (cli_opt(argc, argv, &i, "--figure", &value)) {
            if (!(figure = value)) return usage_error("--figure needs a value");
        } else if (cli_opt(argc, argv, &i, "-o", &value) || cli_opt(argc, argv, &i, "--output", &value)) {
            if (!(output = value)) return usage_error("-o needs a file name");
        } else if (cli_opt(argc, argv, &i, "--series", &value)) {
            if (!(series = value)) return usage_error("--series needs a glob, e.g. 'arith/*'");
        } else if (cli_opt(argc, argv, &i, "--score", &value)) {
            if (!(score = value)) return usage_error("--score needs a value");
        } else if (cli_opt(argc, argv, &i, "--model-id", &value)) {
            bad = cli_parse_model_id(value, &model_id);
        } else if (cli_opt(argc, argv, &i, "--run", &value)) {
            bad = parse_long("--run", value, &run);
        } else if (cli_opt(argc, argv, &i, "--layer", &value)) {
            bad = parse_long("--layer", value, &layer);
        } else if (cli_opt(argc, argv, &i, "--head", &value)) {
            bad = parse_long("--head", value, &head);
        } else if (cli_opt(argc, argv, &i, "--tokens", &value)) {
            char extra;
            if (!value || sscanf(value, "%ld:%ld%c", &tok_lo, &tok_n, &extra) != 2 || tok_lo < 0 || tok_n < 0)
                return usage_error("--tokens takes FIRST:COUNT, e.g. 0:256");
        } else if (cli_opt(argc, argv, &i, "--size", &value)) {
            char extra;
            if (!value || sscanf(value, "%ldx%ld%c", &width, &height, &extra) != 2 || width < 16 || height < 16 ||
                width > 16384 || height > 16384)
                return usage_error("--size takes WxH between 16 and 16384, e.g. 1280x800");
        } else if (cli_opt(argc, argv, &i, "--theme", &value)) {
            if (value && strcmp(value, "light") == 0) theme = PL_THEME_LIGHT;
            else if (value && strcmp(value, "dark") == 0) theme = PL_THEME_DARK;
            else return usage_error("--theme takes light or dark");
        } else if (argv[i][0] == '-') {
            char msg[256];
            snprintf(msg, sizeof msg, "unknown option '%s'", argv[i]);
            return usage_error(msg);
        } else if (!store) {
            store = argv[i];
        } else {
            return usage_error("more than one store given");
        }
        if (bad) return pl_print_error(), 2;
    }
    if (!store) return usage_error("no store given");
    if (!figure) return usage_error("--figure NAME is required (--figure list shows them)");
    int is_list = strcmp(figure, "list") == 0;
    if (!is_list && !output) return usage_error("-o OUT.png|svg|pdf is required");

    pl_vstore *v;
    if (pl_vstore_open(&v, store) != 0) return pl_print_error(), 1;
    int rc = 1;
    if (is_list) {
        pl_figure_entry *e;
        int n;
        if (pl_figures_list(v, &e, &n) != 0) goto done;
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
    o.theme = theme;
    pl_figure *fig;
    if (pl_figures_build(&fig, v, figure, &o) != 0) goto done;
    int save = pl_plot_save(fig, output, (int)width, (int)height);
    pl_figure_free(fig);
    if (save != 0) goto done;
    rc = 0;
done:
    if (rc != 0) pl_print_error();
    pl_vstore_close(v);
    return rc;
}
