// probelab precot S.db: the pre-CoT analysis (probes/precot/precot.h).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_opts.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "probes/precot/precot.h"
#include "probes/probe_store.h"
#include "runtime/base/error.h"

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

static int parse_alphas(const char *value, void *out) {
    pl_precot_options *o = out;
    int n = parse_floats("--alphas", value, o->alphas, PL_PRECOT_MAX_ALPHAS);
    if (n < 0) return -1;
    o->n_alphas = n;
    return 0;
}

// An analysis as {"params": {...}, "rows": [{"series", "x", "y", "lo", "hi"}]}, built with jansson.
static json_t *analysis_json(pl_store *s, const char *name) {
    pl_analysis a;
    if (pl_store_get_analysis(s, name, &a)) return NULL;
    json_t *params = a.params_json ? json_loads(a.params_json, 0, NULL) : NULL;
    json_t *rows = json_array();
    for (int i = 0; i < a.n_rows; i++) {
        const pl_analysis_row *r = &a.rows[i];
        json_t *row = json_pack("{s:s, s:o, s:o}", "series", r->series, "x", cli_json_real(r->x), "y", cli_json_real(r->y));
        if (row && isfinite(r->lo)) {
            json_object_set_new(row, "lo", cli_json_real(r->lo));
            json_object_set_new(row, "hi", cli_json_real(r->hi));
        }
        json_array_append_new(rows, row);
    }
    pl_analysis_free(&a);
    return json_pack("{s:o, s:o}", "params", params ? params : json_object(), "rows", rows);
}

int cmd_precot(int argc, char **argv) {
    const char *path = NULL, *model = NULL, *layers = "best";
    pl_precot_options o = pl_precot_defaults();
    int64_t n_steer = o.n_steer, model_id = o.model_id, max_new = o.max_new, folds = o.n_folds, bootstrap = o.n_bootstrap,
            seed = (int64_t)o.seed, splits = o.n_splits;
    bool json = false, quiet = false, steer_all = false;
    const cli_option opts[] = {
        {"--model", CLI_STRING, &model, "PATH", .help = "the traced model moved elsewhere, for steering (its sha256 must match)",
         .def = "the path the store recorded"},
        CLI_MODEL_ID_OPTION(model_id),
        {"--tasks", CLI_STRING, &o.tasks, "T,T", .help = "only these tasks", .def = "every task in the store"},
        {"--alphas", CLI_CUSTOM, &o, "A,A,...", .help = "steering strengths (finite numbers)",
         .def = "-8,-4,-2,-1,-0.5,-0.25,0,0.25,0.5,1,2,4,8", .parse = parse_alphas},
        {"--layers", CLI_STRING, &layers, "best|all|L,L", .help = "steering layers", .def = "best"},
        {"--n-steer", CLI_INT, &n_steer, "N", .help = "items steered per task; 0 = no steering", .def = "40", .min = 0,
         .max = 1000000},
        {"--by", CLI_STRING, &o.by, "KEY", .help = "also every series per <task>@<value> of KEY: difficulty or a run label"},
        {"--splits", CLI_INT, &splits, "N", .help = "held-out group splits every metric is averaged over", .def = "5",
         .min = 1, .max = 64},
        {"--steer-all", CLI_FLAG, &steer_all, .help = "steer every item, not only those answered correctly"},
        {"--max-new", CLI_INT, &max_new, "N", .help = "tokens generated per steered item", .def = "96", .min = 1, .max = 1 << 20},
        {"--folds", CLI_INT, &folds, "K", .help = "cross-validation folds", .def = "5", .min = 2, .max = 100},
        {"--bootstrap", CLI_INT, &bootstrap, "N", .help = "bootstrap resamples for the CIs (per split)", .def = "1000", .min = 0, .max = 1000000},
        {"--seed", CLI_INT, &seed, "S", .help = "random seed", .def = "0", .min = 0, .max = (double)INT64_MAX},
        {"--json", CLI_FLAG, &json, .help = "print the analyses as one JSON object {name: {\"params\", \"rows\"}}"},
        {"--quiet", CLI_FLAG, &quiet, .help = "no progress on stderr"},
        {0}};
    const cli_positional pos[] = {{"S.db", &path, "the store", true}, {0}};
    const cli_spec spec = {
        "precot", opts, pos,
        .summary =
            "Needs a store traced with --hooks 'blocks.*.hook_resid_post,hook_embed' (positions prompt, all or\n"
            "last-prompt; prompt or all give the mean-embedding input baseline).\n"
            "1. Per task: AUROC / accuracy / log-loss / ECE by layer of probes at the last prompt token (the last token\n"
            "   before the chain of thought) for the model's own final answer and for the gold answer, each the mean over\n"
            "   --splits held-out group splits (lambda by CV inside each training part) with bootstrap 95% CIs and the\n"
            "   spread across splits, beside the controls on the same splits: input-only baselines (bag of tokens,\n"
            "   positional one-hot, mean prompt embedding, metadata), hook_embed, shuffled labels, majority, control task.\n"
            "2. Steering (--n-steer items per task; 0 = none): on items the model answers correctly, add alpha * w to\n"
            "   resid_post of the chosen layers (default: the lowest CV log-loss on split 0's training rows) at every\n"
            "   position and generation step; w = the probe direction toward a random other answer, scaled to the\n"
            "   layer's mean residual norm. Controls at the same layer, positions and norm: an isotropic random direction\n"
            "   orthogonal to w, a covariance-matched one (drawn from the activations' covariance, orthogonal to w) and\n"
            "   the direction of a probe trained on shuffled labels. Flip rates vs alpha (Wilson 95% CIs), CoT taxonomy.\n"
            "Results: analyses precot.* (layouts in docs/probes.md)."};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    o.n_steer = (int)n_steer, o.model_id = model_id, o.max_new = (int)max_new, o.n_folds = (int)folds;
    o.n_bootstrap = (int)bootstrap, o.seed = (uint64_t)seed, o.steer_all = steer_all, o.n_splits = (int)splits;
    pl_store *s;
    if (pl_store_open(&s, path, PL_STORE_WRITE)) return cli_fail();
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
        static const char *names[] = {"precot.auroc_by_layer",       "precot.accuracy_by_layer", "precot.log_loss_by_layer",
                                      "precot.selectivity_by_layer", "precot.auroc_sd_by_layer", "precot.ece_by_layer",
                                      "precot.wrong_runs_by_layer",  "precot.flip_rate",         "precot.taxonomy"};
        int n = o.n_steer > 0 ? 9 : 7;
        json_t *root = json_object();
        for (int i = 0; i < n; i++) {
            json_t *a = analysis_json(s, names[i]);
            if (a) json_object_set_new(root, names[i], a);
        }
        if (cli_print_json(root) != 0) {
            pl_store_close(s);
            return 1;
        }
    }
    status = 0;
done:
    if (status) cli_fail();
    pl_store_close(s);
    return status;
}
