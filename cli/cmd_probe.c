// probelab probe train|apply|list|show: linear probes over a trace store (probes/probe_store.h).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_opts.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "probes/probe_store.h"
#include "runtime/base/clock.h"
#include "runtime/base/error.h"

static json_t *metrics_json(const pl_probe_metrics *m) {
    json_t *o = json_pack("{s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "n", (json_int_t)m->n, "n_groups",
                     (json_int_t)m->n_groups, "accuracy", cli_json_real(m->accuracy), "accuracy_lo",
                     cli_json_real(m->accuracy_lo), "accuracy_hi", cli_json_real(m->accuracy_hi), "auroc",
                     cli_json_real(m->auroc), "auroc_lo", cli_json_real(m->auroc_lo), "auroc_hi", cli_json_real(m->auroc_hi),
                     "log_loss", cli_json_real(m->log_loss), "log_loss_lo", cli_json_real(m->log_loss_lo), "log_loss_hi",
                     cli_json_real(m->log_loss_hi), "majority_accuracy", cli_json_real(m->majority_accuracy),
                     "control_accuracy", cli_json_real(m->control_accuracy), "selectivity", cli_json_real(m->selectivity));
    // Repeated splits and the controls (means over splits; NaN -> null where not computed).
    json_t *more = json_pack("{s:i, s:o, s:o, s:o, s:o, s:o, s:s, s:o, s:o, s:o, s:I, s:o, s:o}", "n_splits", m->n_splits,
                             "auroc_sd", cli_json_real(m->auroc_sd), "accuracy_sd", cli_json_real(m->accuracy_sd), "ece",
                             cli_json_real(m->ece), "shuffled_auroc", cli_json_real(m->shuffled_auroc), "shuffled_accuracy",
                             cli_json_real(m->shuffled_accuracy), "input_kind",
                             m->input_kind >= 0 ? pl_input_kind_name(m->input_kind) : "", "input_auroc",
                             cli_json_real(m->input_auroc), "input_auroc_sd", cli_json_real(m->input_auroc_sd),
                             "input_accuracy", cli_json_real(m->input_accuracy), "n_wrong", (json_int_t)m->n_wrong,
                             "wrong_own", cli_json_real(m->wrong_own), "wrong_gold", cli_json_real(m->wrong_gold));
    if (o && more) json_object_update(o, more);
    json_decref(more);
    return o;
}

static void layer_row(const pl_probe_layer *L) {
    const pl_probe_metrics *m = &L->probe->metrics;
    printf("%-28s %6lld  %.3f [%.3f, %.3f] ±%.3f  %.3f [%.3f, %.3f]  %.3f [%.3f, %.3f]  %-8.0e %-8.3f %-8.3f %+.3f  "
           "%-8.3f %-8.3f %s\n",
           L->hook, (long long)m->n, m->auroc, m->auroc_lo, m->auroc_hi, m->auroc_sd, m->accuracy, m->accuracy_lo,
           m->accuracy_hi, m->log_loss, m->log_loss_lo, m->log_loss_hi, L->probe->lambda, m->majority_accuracy,
           m->control_accuracy, m->selectivity, m->input_auroc, m->shuffled_auroc, L->probe_id ? "" : "(not stored)");
}

static json_t *layer_json(const pl_probe_layer *L) {
    return json_pack("{s:s, s:i, s:I, s:o, s:i, s:b, s:o, s:o}", "hook", L->hook, "layer", L->layer, "probe_id",
                     (json_int_t)L->probe_id, "lambda", cli_json_real(L->probe->lambda), "iterations", L->probe->iterations,
                     "converged", (int)L->probe->converged, "mean_norm",
                     cli_json_real(L->mean_norm), "metrics", metrics_json(&L->probe->metrics));
}

static json_t *classes_json(char **names, int n) {
    json_t *a = json_array();
    for (int c = 0; c < n; c++) json_array_append_new(a, cli_json_text(names[c], strlen(names[c])));
    return a;
}

static const char probe_train_summary[] =
    "One logistic-regression probe per recorded hook matching GLOBS, one row per complete run at the position RULE.\n"
    "Label KEY: answer (the model's own final answer, default) | gold | correct | any run label.\n"
    "Lambda by group k-fold CV on 80% of the examples (groups = examples, never tokens); held-out accuracy, macro\n"
    "AUROC and log-loss with group-bootstrap 95% CIs; baselines: majority class, the same probe on hook_embed, and a\n"
    "control task (Hewitt & Liang: random labels per question type = the task and its prompt with digits masked;\n"
    "selectivity = accuracy - control accuracy). Every metric is the mean over --splits held-out group splits (lambda\n"
    "by CV inside each training part), with the sd across splits. --controls input,shuffled: also the input-only\n"
    "baselines (bag of tokens, positional one-hot, mean prompt embedding, metadata; the strongest is reported) and\n"
    "the probe on shuffled labels, on the same splits, stored with each probe's metrics.\n"
    "Each probe is stored as '<name><label>@<rule>/<hook>'.";

static int parse_controls(const char *value, void *out) { return pl_probe_controls_parse(out, value); }

static int probe_train(int argc, char **argv) {
    const char *path = NULL;
    pl_probe_train_options o = pl_probe_train_defaults();
    pl_probe_at at = {PL_AT_LAST_PROMPT, 0};
    int64_t model_id = 0, folds = o.eval.cv.n_folds, seed = (int64_t)o.eval.cv.seed, bootstrap = o.eval.n_bootstrap,
            splits = o.n_splits;
    bool json = false, balanced = false, no_save = false, no_control = false;
    char positions_help[300];
    snprintf(positions_help, sizeof positions_help, "one position per run: %s", cli_positions_list(CLI_POS_ONE));
    const cli_option opts[] = {
        {"--hooks", CLI_STRING, &o.hooks, "GLOBS", .help = "hooks to probe", .def = "blocks.*.hook_resid_post",
         .aliases = {"--hook"}},
        {"--positions", CLI_CUSTOM, &at, "RULE", .help = positions_help, .def = "last-prompt", .parse = cli_parse_positions_one},
        {"--at", CLI_CUSTOM, &at, "RULE", .help = "old name of --positions; there `answer` means answer-prefix",
         .parse = cli_parse_at_legacy},
        {"--label", CLI_STRING, &o.sel.label, "KEY", .help = "what the probe predicts", .def = "answer"},
        {"--task", CLI_STRING, &o.sel.task, "T", .help = "only runs of task T"},
        CLI_MODEL_ID_OPTION(model_id),
        {"--folds", CLI_INT, &folds, "K", .help = "cross-validation folds", .def = "5", .min = 2, .max = 100},
        {"--seed", CLI_INT, &seed, "S", .help = "random seed of the splits and the bootstrap", .def = "0", .min = 0,
         .max = (double)INT64_MAX},
        {"--bootstrap", CLI_INT, &bootstrap, "N", .help = "bootstrap resamples for the CIs", .def = "1000", .min = 0,
         .max = 1000000},
        {"--balanced", CLI_FLAG, &balanced, .help = "class-balanced loss"},
        {"--name", CLI_STRING, &o.name_prefix, "PREFIX", .help = "prefix of the stored names"},
        {"--no-save", CLI_FLAG, &no_save, .help = "fit and report, store nothing"},
        {"--no-control", CLI_FLAG, &no_control, .help = "skip the control task"},
        {"--splits", CLI_INT, &splits, "N", .help = "held-out group splits every metric is averaged over", .def = "5",
         .min = 1, .max = 64},
        {"--controls", CLI_CUSTOM, &o.controls, "input,shuffled", .help = "controls fitted on the same splits",
         .def = "none", .parse = parse_controls},
        {"--json", CLI_FLAG, &json, .help = "print the sweep as JSON"},
        {0}};
    const cli_positional pos[] = {{"S.db", &path, "the store", true}, {0}};
    const cli_spec spec = {"probe train", opts, pos, .summary = probe_train_summary};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    o.sel.at = at;
    o.sel.model_id = model_id;
    o.eval.cv.n_folds = (int)folds;
    o.eval.cv.seed = o.eval.seed = (uint64_t)seed;
    o.eval.n_bootstrap = (int)bootstrap;
    if (balanced) o.eval.probe.balanced = 1;
    if (no_save) o.save = 0;
    if (no_control) o.control_task = 0;
    o.n_splits = (int)splits;
    char at_text[32];
    pl_probe_at_format(at_text, sizeof at_text, &o.sel.at);
    pl_store *s;
    if (pl_store_open(&s, path, o.save ? PL_STORE_WRITE : PL_STORE_READ)) return cli_fail();
    double t0 = pl_now_sec();
    pl_probe_sweep sw;
    if (pl_probe_train_sweep(&sw, s, &o)) {
        cli_fail();
        pl_store_close(s);
        return 1;
    }
    double secs = pl_now_sec() - t0;
    const pl_probe_rows *r = &sw.rows;
    int status = 0;
    if (json) {
        json_t *probes = json_array();
        for (int i = 0; i < sw.n_layers; i++) json_array_append_new(probes, layer_json(&sw.layers[i]));
        status = cli_print_json(json_pack(
            "{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:i, s:o, s:o, s:o, s:o}", "store", path, "label", o.sel.label, "at", at_text,
            "task", o.sel.task ? o.sel.task : "", "model_id", (json_int_t)r->model_id, "n_runs", (json_int_t)r->n, "n_skipped",
            (json_int_t)r->n_skipped, "folds", o.eval.cv.n_folds, "seconds", cli_json_real(secs), "classes",
            classes_json(r->class_names, r->n_classes), "probes", probes, "embed_baseline",
            sw.has_embed ? layer_json(&sw.embed) : json_null()));
    } else {
        printf("probe train %s: label '%s' at %s, %lld runs (%lld skipped), %d classes:", path, o.sel.label, at_text,
               (long long)r->n, (long long)r->n_skipped, r->n_classes);
        for (int c = 0; c < r->n_classes && c < 12; c++) printf(" %s", r->class_names[c]);
        printf("%s\n", r->n_classes > 12 ? " ..." : "");
        printf("held-out metrics, mean over %d group split(s), mean group-bootstrap 95%% CIs and ± the sd across splits;\n"
               "lambda by %d-fold group CV inside each training part\n", sw.n_splits, o.eval.cv.n_folds);
        if (sw.best_input >= 0) {
            printf("input-only baselines (AUROC ± sd):");
            for (int k = 0; k < PL_INPUT_KINDS; k++)
                if (sw.inputs[k].available)
                    printf(" %s %.3f ± %.3f%s", pl_input_kind_name(k), sw.inputs[k].metrics.auroc, sw.inputs[k].metrics.auroc_sd,
                           k == sw.best_input ? " (strongest: the 'input' column)" : "");
            printf("\n");
        }
        printf("%-28s %6s  %-27s  %-20s  %-20s  %-8s %-8s %-8s %-11s  %-8s %-8s\n", "hook", "n_test", "AUROC", "accuracy",
               "log-loss", "lambda", "majority", "control", "selectivity", "input", "shuffled");
        for (int i = 0; i < sw.n_layers; i++) layer_row(&sw.layers[i]);
        if (sw.has_embed) layer_row(&sw.embed);
        else printf("(hook_embed not recorded: no embedding baseline; trace with --hooks '...,hook_embed')\n");
        printf("%d probe(s) %s in %.2f s\n", sw.n_layers, o.save ? "stored" : "fitted", secs);
    }
    pl_probe_sweep_free(&sw);
    pl_store_close(s);
    return status;
}

static json_t *record_json(const pl_probe_record *r) {
    return json_pack("{s:I, s:o, s:s, s:s, s:s, s:o, s:o, s:I, s:o, s:s, s:i, s:o, s:o, s:o, s:o}", "id", (json_int_t)r->id,
                     "name", cli_json_text(r->name, strlen(r->name)), "kind", r->kind, "hook", r->hook, "at", r->at,
                     "label", cli_json_text(r->label, strlen(r->label)), "task", cli_json_text(r->task, strlen(r->task)),
                     "model_id", (json_int_t)r->model_id, "model_name", cli_json_text(r->model_name, strlen(r->model_name)),
                     "model_sha256", r->model_sha256, "d", r->d, "lambda", cli_json_real(r->lambda), "created",
                     cli_json_real(r->created), "classes", classes_json(r->class_names, r->n_classes), "metrics",
                     metrics_json(&r->metrics));
}

static int probe_list(int argc, char **argv) {
    const char *path = NULL;
    bool json = false;
    const cli_option opts[] = {{"--json", CLI_FLAG, &json, .help = "print a JSON array of probe records"}, {0}};
    const cli_positional pos[] = {{"S.db", &path, "the store", true}, {0}};
    const cli_spec spec = {"probe list", opts, pos, .summary = "List the probes stored in a store."};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    pl_store *s;
    if (pl_store_open(&s, path, PL_STORE_READ)) return cli_fail();
    pl_probe_record *recs;
    int n;
    if (pl_probe_list_saved(s, &recs, &n)) {
        cli_fail();
        pl_store_close(s);
        return 1;
    }
    json_t *a = json ? json_array() : NULL;
    if (!json) printf("%-5s %-50s %-12s %-7s %-7s %-7s\n", "id", "name", "kind", "classes", "AUROC", "acc");
    for (int i = 0; i < n; i++) {
        if (json) json_array_append_new(a, record_json(&recs[i]));
        else
            printf("%-5lld %-50s %-12s %-7d %-7.3f %-7.3f\n", (long long)recs[i].id, recs[i].name, recs[i].kind,
                   recs[i].n_classes, recs[i].metrics.auroc, recs[i].metrics.accuracy);
        pl_probe_record_free(&recs[i]);
    }
    int status = 0;
    if (json) status = cli_print_json(a);
    else if (n == 0) printf("(no probes in %s; probelab probe train %s)\n", path, path);
    free(recs);
    pl_store_close(s);
    return status;
}

static int probe_show(int argc, char **argv) {
    const char *path = NULL, *ref = NULL;
    bool json = false;
    const cli_option opts[] = {{"--json", CLI_FLAG, &json, .help = "print the probe record as JSON"}, {0}};
    const cli_positional pos[] = {{"S.db", &path, "the store", true}, {"PROBE", &ref, "a probe id or name", true}, {0}};
    const cli_spec spec = {"probe show", opts, pos, .summary = "Print one stored probe: what it reads, its fit and its metrics."};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    pl_store *s;
    if (pl_store_open(&s, path, PL_STORE_READ)) return cli_fail();
    pl_probe *p;
    pl_probe_record r;
    if (pl_probe_load(s, ref, &p, &r)) {
        cli_fail();
        pl_store_close(s);
        return 1;
    }
    int status = 0;
    if (json) {
        status = cli_print_json(record_json(&r));
    } else {
        const pl_probe_metrics *m = &r.metrics;
        printf("probe %lld  %s\n", (long long)r.id, r.name);
        printf("  kind        %s, %d features, %d classes:", r.kind, r.d, r.n_classes);
        for (int c = 0; c < r.n_classes && c < 16; c++) printf(" %s", r.class_names[c]);
        printf("\n  reads       %s at %s; label '%s'%s%s\n", r.hook, r.at, r.label, r.task[0] ? ", task " : "", r.task);
        printf("  model       %s (id %lld, sha256 %.16s…)\n", r.model_name, (long long)r.model_id, r.model_sha256);
        printf("  fit         lambda %g, %lld training rows\n", r.lambda, (long long)p->n_train);
        printf("  held out    n=%lld (%lld examples)\n", (long long)m->n, (long long)m->n_groups);
        printf("  AUROC       %.4f [%.4f, %.4f]\n", m->auroc, m->auroc_lo, m->auroc_hi);
        printf("  accuracy    %.4f [%.4f, %.4f]  (majority %.4f, control %.4f, selectivity %+.4f)\n", m->accuracy, m->accuracy_lo,
               m->accuracy_hi, m->majority_accuracy, m->control_accuracy, m->selectivity);
        printf("  log-loss    %.4f [%.4f, %.4f]\n", m->log_loss, m->log_loss_lo, m->log_loss_hi);
        for (int k = 0; k < p->n_outputs; k++) {
            double nn = 0;
            for (int j = 0; j < p->d; j++) nn += (double)p->weights[(size_t)k * p->d + j] * p->weights[(size_t)k * p->d + j];
            printf("  |w_%d|       %.4f  bias %.4f\n", k, sqrt(nn), p->bias[k]);
        }
    }
    pl_probe_free(p);
    pl_probe_record_free(&r);
    pl_store_close(s);
    return status;
}

static int probe_apply(int argc, char **argv) {
    const char *path = NULL, *ref = NULL, *runs = "all", *hook = NULL, *cls = NULL;
    bool json = false;
    int64_t model_id = 0;
    const cli_option opts[] = {
        {"--runs", CLI_STRING, &runs, "all|ID,ID", .help = "runs to score", .def = "every complete run of the model"},
        CLI_MODEL_ID_OPTION(model_id),
        {"--hooks", CLI_STRING, &hook, "HOOK", .help = "read this hook instead of the probe's own", .aliases = {"--hook"}},
        {"--class", CLI_STRING, &cls, "NAME", .help = "score the probability of this class",
         .def = "the run's own label class, else the positive / top class"},
        {"--json", CLI_FLAG, &json, .help = "print {\"probe\", \"runs\", \"values\", \"seconds\"}"},
        {0}};
    const cli_positional pos[] = {{"S.db", &path, "the store", true}, {"PROBE", &ref, "a probe id or name", true}, {0}};
    const cli_spec spec = {"probe apply", opts, pos,
                           .summary = "Score every recorded token of the runs with PROBE into probe_outputs (the viewer's "
                                      "token colours)."};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    pl_store *s;
    if (pl_store_open(&s, path, PL_STORE_WRITE)) return cli_fail();
    int64_t *ids = NULL;
    int n = 0, status = 1;
    if (strcmp(runs, "all") != 0) {  // else NULL: every complete run of the model
        int32_t *r32;
        n = cli_parse_ids(runs, &r32);
        if (n < 0) goto done;
        ids = malloc(sizeof(int64_t) * (size_t)(n + 1));
        for (int i = 0; ids && i < n; i++) ids[i] = r32[i];
        free(r32);
        if (!ids) { pl_fail("out of memory"); goto done; }
    }
    int64_t scored = 0;
    double t0 = pl_now_sec();
    if (pl_probe_apply(s, ref, model_id, ids, n, hook, cls, &scored, &n)) goto done;
    if (json) {
        status = cli_print_json(json_pack("{s:o, s:i, s:I, s:o}", "probe", cli_json_text(ref, strlen(ref)), "runs", n,
                                          "values", (json_int_t)scored, "seconds", cli_json_real(pl_now_sec() - t0)));
        goto quiet;
    }
    printf("probe %s: scored %lld tokens of %d run(s) into probe_outputs (%.2f s)\n", ref, (long long)scored, n, pl_now_sec() - t0);
    status = 0;
done:
    if (status) cli_fail();
quiet:
    free(ids);
    pl_store_close(s);
    return status;
}

int cmd_probe(int argc, char **argv) {
    static const cli_subcommand subs[] = {
        {"train", probe_train, "fit one probe per hook (layer sweep with CV, CIs and baselines) and store them"},
        {"apply", probe_apply, "score every recorded token of runs with a stored probe"},
        {"list", probe_list, "list the stored probes"},
        {"show", probe_show, "print one stored probe"},
        {0}};
    return cli_dispatch("probe", "Linear probes over a trace store (docs/probes.md).", subs, argc, argv);
}
