// probelab precot S.db: the pre-CoT analysis (probes/precot/precot.h).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "probes/precot/precot.h"
#include "probes/probe_store.h"
#include "runtime/base/error.h"

static const char precot_usage[] =
    "usage: probelab precot S.db [--model PATH] [--alphas -8,-4,-2,-1,-0.5,-0.25,0,0.25,0.5,1,2,4,8] [--layers best|all|L,L,...] [--n-steer N]\n"
    "                            [--tasks T,T] [--model-id N] [--steer-all] [--max-new N] [--folds K] [--bootstrap N]\n"
    "                            [--seed S] [--json] [--quiet]\n"
    "Needs a store traced with --record 'blocks.*.hook_resid_post,hook_embed' (positions all or last-prompt).\n"
    "1. Per task: AUROC / accuracy / log-loss by layer of probes at the last prompt token (the last token before\n"
    "   the chain of thought) for the model's own final answer and for the gold answer, with bootstrap 95% CIs\n"
    "   and baselines (majority, hook_embed, control task).\n"
    "2. Steering (--n-steer items per task, default 40; 0 = none): on items the model answers correctly, add\n"
    "   alpha * w to resid_post of the chosen layers (default: the best-AUROC layer) at every position and every\n"
    "   generation step; w = the probe direction toward a random other answer, scaled to the layer's mean\n"
    "   residual norm; control = a random direction orthogonal to w with the same norm. Flip rates vs alpha\n"
    "   (Wilson 95% CIs) and the CoT taxonomy of every steered generation.\n"
    "   --model PATH: the traced model moved elsewhere (default: the path the store recorded; its sha256 must\n"
    "   match). --model-id N: runs of model N (needed when the store holds several; runs S.db --models).\n"
    "Results: analyses precot.auroc_by_layer, precot.accuracy_by_layer, precot.log_loss_by_layer,\n"
    "precot.flip_rate, precot.taxonomy (layouts in docs/probes.md); --json prints them as JSON.\n";

// Parse "a,b,c" floats into out[max]; returns the count or -1.
static int parse_floats(const char *opt, const char *text, float *out, int max) {
    int n = 0;
    const char *p = text;
    while (*p) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || !isfinite(v)) return pl_fail("%s '%s': expected comma-separated numbers", opt, text);
        if (n == max) return pl_fail("%s: at most %d values", opt, max);
        out[n++] = (float)v;
        p = end;
        if (*p == ',') p++;
        else if (*p) return pl_fail("%s '%s': expected comma-separated numbers", opt, text);
    }
    if (n == 0) return pl_fail("%s: no values", opt);
    return n;
}

static void print_analysis_json(pl_store *s, const char *name, int comma) {
    pl_analysis a;
    if (pl_store_get_analysis(s, name, &a)) return;
    printf("  \"%s\": {\"params\": %s, \"rows\": [", name, a.params_json ? a.params_json : "{}");
    for (int i = 0; i < a.n_rows; i++) {
        const pl_analysis_row *r = &a.rows[i];
        printf("%s\n    {\"series\": \"%s\", \"x\": %g, \"y\": ", i ? "," : "", r->series, r->x);
        if (isfinite(r->y)) printf("%.6g", r->y); else printf("null");
        if (isfinite(r->lo)) printf(", \"lo\": %.6g, \"hi\": %.6g", r->lo, r->hi);
        printf("}");
    }
    printf("]}%s\n", comma ? "," : "");
    pl_analysis_free(&a);
}

int cmd_precot(int argc, char **argv) {
    const char *path = NULL, *v, *model = NULL, *layers = "best";
    pl_precot_options o = pl_precot_defaults();
    bool json = false, quiet = false;
    long lv;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) return printf("%s", precot_usage), 0;
        else if (cli_opt(argc, argv, &i, "--model", &v)) model = v;
        else if (cli_opt(argc, argv, &i, "--tasks", &v)) o.tasks = v;
        else if (cli_opt(argc, argv, &i, "--layers", &v)) layers = v;
        else if (cli_opt(argc, argv, &i, "--alphas", &v)) {
            if ((o.n_alphas = parse_floats("--alphas", v, o.alphas, PL_PRECOT_MAX_ALPHAS)) < 0) return pl_print_error(), 2;
        } else if (cli_opt(argc, argv, &i, "--n-steer", &v)) {
            if (cli_parse_int("--n-steer", v, &lv) || lv < 0) return pl_print_error(), 2;
            o.n_steer = (int)lv;
        } else if (cli_opt(argc, argv, &i, "--model-id", &v)) {
            if (cli_parse_model_id(v, &o.model_id)) return pl_print_error(), 2;
        } else if (cli_opt(argc, argv, &i, "--max-new", &v)) {
            if (cli_parse_int("--max-new", v, &lv) || lv < 1) return pl_print_error(), 2;
            o.max_new = (int)lv;
        } else if (cli_opt(argc, argv, &i, "--folds", &v)) {
            if (cli_parse_int("--folds", v, &lv) || lv < 2 || lv > 100) return pl_fail("--folds: 2..100"), pl_print_error(), 2;
            o.n_folds = (int)lv;
        } else if (cli_opt(argc, argv, &i, "--bootstrap", &v)) {
            if (cli_parse_int("--bootstrap", v, &lv) || lv < 0) return pl_print_error(), 2;
            o.n_bootstrap = (int)lv;
        } else if (cli_opt(argc, argv, &i, "--seed", &v)) {
            if (cli_parse_int("--seed", v, &lv) || lv < 0) return pl_print_error(), 2;
            o.seed = (uint64_t)lv;
        } else if (strcmp(argv[i], "--steer-all") == 0) o.steer_all = 1;
        else if (strcmp(argv[i], "--json") == 0) json = true;
        else if (strcmp(argv[i], "--quiet") == 0) quiet = true;
        else if (argv[i][0] == '-') return fprintf(stderr, "probelab precot: unknown option '%s'\n%s", argv[i], precot_usage), 2;
        else if (!path) path = argv[i];
        else return fprintf(stderr, "probelab precot: unexpected argument '%s'\n", argv[i]), 2;
    }
    if (!path) return fprintf(stderr, "probelab precot: missing S.db\n%s", precot_usage), 2;
    pl_store *s;
    if (pl_store_open(&s, path, PL_STORE_WRITE)) return pl_print_error(), 1;
    int status = 1;
    if (strcmp(layers, "best") != 0) {
        if (strcmp(layers, "all") == 0) {
            char **hooks;
            int nh;
            if (pl_store_list_hooks(s, &hooks, &nh)) goto done;
            for (int i = 0; i < nh; i++) {
                int l;
                if (sscanf(hooks[i], "blocks.%d.hook_resid_post", &l) == 1 && strstr(hooks[i], "hook_resid_post") &&
                    o.n_layers < PL_PRECOT_MAX_LAYERS)
                    o.layers[o.n_layers++] = l;
            }
            pl_strings_free(hooks, nh);
            if (o.n_layers == 0) { pl_fail("%s: no blocks.*.hook_resid_post recorded", path); goto done; }
        } else {
            int32_t *ids;
            int n = cli_parse_ids(layers, &ids);
            if (n < 0) goto done;
            if (n > PL_PRECOT_MAX_LAYERS) { free(ids); pl_fail("--layers: at most %d", PL_PRECOT_MAX_LAYERS); goto done; }
            for (int i = 0; i < n; i++) o.layers[i] = ids[i];
            o.n_layers = n;
            free(ids);
        }
    }
    o.model_path = model;
    o.log = quiet ? NULL : stderr;
    if (pl_precot_run(s, &o, json ? NULL : stdout)) goto done;
    if (json) {
        static const char *names[] = {"precot.auroc_by_layer", "precot.accuracy_by_layer", "precot.log_loss_by_layer",
                                      "precot.flip_rate", "precot.taxonomy"};
        int n = o.n_steer > 0 ? 5 : 3;
        printf("{\n");
        for (int i = 0; i < n; i++) print_analysis_json(s, names[i], i + 1 < n);
        printf("}\n");
    }
    status = 0;
done:
    if (status) pl_print_error();
    pl_store_close(s);
    return status;
}
