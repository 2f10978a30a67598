// probelab probe train|apply|list|show: linear probes over a trace store (probes/probe_store.h).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "probes/probe_store.h"
#include "runtime/base/clock.h"
#include "runtime/base/error.h"

static const char probe_usage[] =
    "usage: probelab probe train S.db [--hook GLOB] [--at RULE] [--label KEY] [options]\n"
    "       probelab probe apply S.db PROBE [--runs all|ID,ID,...] [--model-id N] [--hook HOOK] [--class NAME] [--json]\n"
    "       probelab probe list S.db [--json]\n"
    "       probelab probe show S.db PROBE [--json]\n"
    "train: one logistic-regression probe per recorded hook matching GLOB (default 'blocks.*.hook_resid_post'),\n"
    "  one row per complete run at position RULE: last-prompt (default) | cot-start | answer | last-cot | token:N.\n"
    "  Label KEY: answer (the model's own final answer, default) | gold | correct | any run label.\n"
    "  Lambda by group k-fold CV on 80% of the examples (groups = examples, never tokens); held-out accuracy,\n"
    "  macro AUROC and log-loss with group-bootstrap 95% CIs; baselines: majority class, the same probe on\n"
    "  hook_embed, and a control task (Hewitt & Liang: random labels per question type = the task and its\n"
    "  prompt with digits masked; selectivity = accuracy - control accuracy).\n"
    "  Each probe is stored as '<name><label>@<rule>/<hook>'.\n"
    "  --task T  only runs of task T     --model-id N  runs of model N (needed if the store holds several)\n"
    "  --folds K (5)  --seed S (0)  --bootstrap N (1000)  --balanced  --name PREFIX  --no-save  --no-control\n"
    "apply: score every recorded token of the runs with PROBE (id or name) into probe_outputs: the probability\n"
    "  of --class NAME, or by default of the run's own label class (else the positive / top class).\n"
    "  --runs all (default: every complete run of the model) or ID,ID,...; --model-id N as for train.\n"
    "All subcommands print tables; --json prints JSON.\n";

static int usage_error(const char *what) {
    if (what) fprintf(stderr, "probelab probe: %s\n", what);
    fprintf(stderr, "%s", probe_usage);
    return 2;
}

static void json_num(const char *key, double v, int comma) {
    if (isfinite(v)) printf("\"%s\": %.6g%s", key, v, comma ? ", " : "");
    else printf("\"%s\": null%s", key, comma ? ", " : "");
}

static void json_str(const char *s) {
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
        else putchar(*s);
    }
    putchar('"');
}

static void metrics_json(const pl_probe_metrics *m) {
    printf("{\"n\": %lld, \"n_groups\": %lld, ", (long long)m->n, (long long)m->n_groups);
    json_num("accuracy", m->accuracy, 1), json_num("accuracy_lo", m->accuracy_lo, 1), json_num("accuracy_hi", m->accuracy_hi, 1);
    json_num("auroc", m->auroc, 1), json_num("auroc_lo", m->auroc_lo, 1), json_num("auroc_hi", m->auroc_hi, 1);
    json_num("log_loss", m->log_loss, 1), json_num("log_loss_lo", m->log_loss_lo, 1), json_num("log_loss_hi", m->log_loss_hi, 1);
    json_num("majority_accuracy", m->majority_accuracy, 1), json_num("control_accuracy", m->control_accuracy, 1);
    json_num("selectivity", m->selectivity, 0);
    printf("}");
}

static void layer_row(const pl_probe_layer *L) {
    const pl_probe_metrics *m = &L->probe->metrics;
    printf("%-28s %6lld  %.3f [%.3f, %.3f]  %.3f [%.3f, %.3f]  %.3f [%.3f, %.3f]  %-8.0e %-8.3f %-8.3f %+.3f  %s\n", L->hook,
           (long long)m->n, m->auroc, m->auroc_lo, m->auroc_hi, m->accuracy, m->accuracy_lo, m->accuracy_hi, m->log_loss,
           m->log_loss_lo, m->log_loss_hi, L->probe->lambda, m->majority_accuracy, m->control_accuracy, m->selectivity,
           L->probe_id ? "" : "(not stored)");
}

static void layer_json(const pl_probe_layer *L, int comma) {
    printf("    {\"hook\": ");
    json_str(L->hook);
    printf(", \"layer\": %d, \"probe_id\": %lld, \"lambda\": %g, \"iterations\": %d, \"converged\": %s, \"mean_norm\": %.6g, "
           "\"metrics\": ",
           L->layer, (long long)L->probe_id, L->probe->lambda, L->probe->iterations, L->probe->converged ? "true" : "false",
           L->mean_norm);
    metrics_json(&L->probe->metrics);
    printf("}%s\n", comma ? "," : "");
}

static int probe_train(int argc, char **argv) {
    const char *path = NULL, *v, *at = "last-prompt";
    pl_probe_train_options o = pl_probe_train_defaults();
    bool json = false;
    long lv;
    for (int i = 2; i < argc; i++) {
        if (cli_is_help(argv[i])) return printf("%s", probe_usage), 0;
        else if (cli_opt(argc, argv, &i, "--hook", &v)) o.hooks = v;
        else if (cli_opt(argc, argv, &i, "--at", &v)) at = v;
        else if (cli_opt(argc, argv, &i, "--label", &v)) o.sel.label = v;
        else if (cli_opt(argc, argv, &i, "--task", &v)) o.sel.task = v;
        else if (cli_opt(argc, argv, &i, "--name", &v)) o.name_prefix = v;
        else if (cli_opt(argc, argv, &i, "--model-id", &v)) {
            if (cli_parse_model_id(v, &o.sel.model_id)) return pl_print_error(), 2;
        } else if (cli_opt(argc, argv, &i, "--folds", &v)) {
            if (cli_parse_int("--folds", v, &lv)) return pl_print_error(), 2;
            if (lv < 2 || lv > 100) return pl_fail("--folds %ld: must be in 2..100", lv), pl_print_error(), 2;
            o.eval.cv.n_folds = (int)lv;
        } else if (cli_opt(argc, argv, &i, "--seed", &v)) {
            if (cli_parse_int("--seed", v, &lv) || lv < 0) return pl_print_error(), 2;
            o.eval.cv.seed = o.eval.seed = (uint64_t)lv;
        } else if (cli_opt(argc, argv, &i, "--bootstrap", &v)) {
            if (cli_parse_int("--bootstrap", v, &lv) || lv < 0) return pl_print_error(), 2;
            o.eval.n_bootstrap = (int)lv;
        } else if (strcmp(argv[i], "--balanced") == 0) o.eval.probe.balanced = 1;
        else if (strcmp(argv[i], "--no-save") == 0) o.save = 0;
        else if (strcmp(argv[i], "--no-control") == 0) o.control_task = 0;
        else if (strcmp(argv[i], "--json") == 0) json = true;
        else if (argv[i][0] == '-') return pl_fail("probe train: unknown option '%s'", argv[i]), pl_print_error(), usage_error(NULL);
        else if (!path) path = argv[i];
        else return usage_error("unexpected argument");
    }
    if (!path) return usage_error("missing S.db");
    if (pl_probe_at_parse(&o.sel.at, at)) return pl_print_error(), 2;
    pl_store *s;
    if (pl_store_open(&s, path, o.save ? PL_STORE_WRITE : PL_STORE_READ)) return pl_print_error(), 1;
    double t0 = pl_now_sec();
    pl_probe_sweep sw;
    if (pl_probe_train_sweep(&sw, s, &o)) {
        pl_print_error();
        pl_store_close(s);
        return 1;
    }
    double secs = pl_now_sec() - t0;
    const pl_probe_rows *r = &sw.rows;
    if (json) {
        printf("{\"store\": ");
        json_str(path);
        printf(", \"label\": ");
        json_str(o.sel.label);
        printf(", \"at\": ");
        json_str(at);
        printf(", \"task\": ");
        json_str(o.sel.task ? o.sel.task : "");
        printf(", \"model_id\": %lld, \"n_runs\": %lld, \"n_skipped\": %lld, \"folds\": %d, \"seconds\": %.3f, \"classes\": [",
               (long long)r->model_id, (long long)r->n, (long long)r->n_skipped, o.eval.cv.n_folds, secs);
        for (int c = 0; c < r->n_classes; c++) printf("%s", c ? ", " : ""), json_str(r->class_names[c]);
        printf("],\n  \"probes\": [\n");
        for (int i = 0; i < sw.n_layers; i++) layer_json(&sw.layers[i], i + 1 < sw.n_layers);
        printf("  ],\n  \"embed_baseline\": ");
        if (sw.has_embed) {
            printf("\n");
            layer_json(&sw.embed, 0);
        } else {
            printf("null\n");
        }
        printf("}\n");
    } else {
        printf("probe train %s: label '%s' at %s, %lld runs (%lld skipped), %d classes:", path, o.sel.label, at, (long long)r->n,
               (long long)r->n_skipped, r->n_classes);
        for (int c = 0; c < r->n_classes && c < 12; c++) printf(" %s", r->class_names[c]);
        printf("%s\n", r->n_classes > 12 ? " ..." : "");
        printf("held-out metrics with group-bootstrap 95%% CIs; lambda by %d-fold group CV\n", o.eval.cv.n_folds);
        printf("%-28s %6s  %-20s  %-20s  %-20s  %-8s %-8s %-8s %s\n", "hook", "n_test", "AUROC", "accuracy", "log-loss",
               "lambda", "majority", "control", "selectivity");
        for (int i = 0; i < sw.n_layers; i++) layer_row(&sw.layers[i]);
        if (sw.has_embed) layer_row(&sw.embed);
        else printf("(hook_embed not recorded: no embedding baseline; trace with --record '...,hook_embed')\n");
        printf("%d probe(s) %s in %.2f s\n", sw.n_layers, o.save ? "stored" : "fitted", secs);
    }
    pl_probe_sweep_free(&sw);
    pl_store_close(s);
    return 0;
}

static void record_json(const pl_probe_record *r, int comma) {
    printf("  {\"id\": %lld, \"name\": ", (long long)r->id);
    json_str(r->name);
    printf(", \"kind\": ");
    json_str(r->kind);
    printf(", \"hook\": ");
    json_str(r->hook);
    printf(", \"at\": ");
    json_str(r->at);
    printf(", \"label\": ");
    json_str(r->label);
    printf(", \"task\": ");
    json_str(r->task);
    printf(", \"model_id\": %lld, \"model_name\": ", (long long)r->model_id);
    json_str(r->model_name);
    printf(", \"model_sha256\": ");
    json_str(r->model_sha256);
    printf(", \"d\": %d, \"lambda\": %g, \"created\": %.3f, \"classes\": [", r->d, r->lambda, r->created);
    for (int c = 0; c < r->n_classes; c++) printf("%s", c ? ", " : ""), json_str(r->class_names[c]);
    printf("], \"metrics\": ");
    metrics_json(&r->metrics);
    printf("}%s\n", comma ? "," : "");
}

static int probe_list(int argc, char **argv) {
    const char *path = NULL;
    bool json = false;
    for (int i = 2; i < argc; i++) {
        if (cli_is_help(argv[i])) return printf("%s", probe_usage), 0;
        else if (strcmp(argv[i], "--json") == 0) json = true;
        else if (argv[i][0] == '-') return usage_error("unknown option");
        else path = argv[i];
    }
    if (!path) return usage_error("missing S.db");
    pl_store *s;
    if (pl_store_open(&s, path, PL_STORE_READ)) return pl_print_error(), 1;
    pl_probe_record *recs;
    int n;
    if (pl_probe_list_saved(s, &recs, &n)) {
        pl_print_error();
        pl_store_close(s);
        return 1;
    }
    if (json) printf("[\n");
    else printf("%-5s %-50s %-12s %-7s %-7s %-7s\n", "id", "name", "kind", "classes", "AUROC", "acc");
    for (int i = 0; i < n; i++) {
        if (json) record_json(&recs[i], i + 1 < n);
        else
            printf("%-5lld %-50s %-12s %-7d %-7.3f %-7.3f\n", (long long)recs[i].id, recs[i].name, recs[i].kind, recs[i].n_classes,
                   recs[i].metrics.auroc, recs[i].metrics.accuracy);
        pl_probe_record_free(&recs[i]);
    }
    if (json) printf("]\n");
    else if (n == 0) printf("(no probes in %s; probelab probe train %s)\n", path, path);
    free(recs);
    pl_store_close(s);
    return 0;
}

static int probe_show(int argc, char **argv) {
    const char *path = NULL, *ref = NULL;
    bool json = false;
    for (int i = 2; i < argc; i++) {
        if (cli_is_help(argv[i])) return printf("%s", probe_usage), 0;
        else if (strcmp(argv[i], "--json") == 0) json = true;
        else if (argv[i][0] == '-' && argv[i][1]) return usage_error("unknown option");
        else if (!path) path = argv[i];
        else if (!ref) ref = argv[i];
        else return usage_error("unexpected argument");
    }
    if (!path || !ref) return usage_error("missing S.db or PROBE");
    pl_store *s;
    if (pl_store_open(&s, path, PL_STORE_READ)) return pl_print_error(), 1;
    pl_probe *p;
    pl_probe_record r;
    if (pl_probe_load(s, ref, &p, &r)) {
        pl_print_error();
        pl_store_close(s);
        return 1;
    }
    if (json) {
        record_json(&r, 0);
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
    return 0;
}

static int probe_apply(int argc, char **argv) {
    const char *path = NULL, *ref = NULL, *runs = "all", *hook = NULL, *cls = NULL, *v;
    bool json = false;
    int64_t model_id = 0;
    for (int i = 2; i < argc; i++) {
        if (cli_is_help(argv[i])) return printf("%s", probe_usage), 0;
        else if (cli_opt(argc, argv, &i, "--model-id", &v)) {
            if (cli_parse_model_id(v, &model_id)) return pl_print_error(), 2;
        } else if (cli_opt(argc, argv, &i, "--runs", &v)) runs = v;
        else if (cli_opt(argc, argv, &i, "--hook", &v)) hook = v;
        else if (cli_opt(argc, argv, &i, "--class", &v)) cls = v;
        else if (strcmp(argv[i], "--json") == 0) json = true;
        else if (argv[i][0] == '-') return usage_error("unknown option");
        else if (!path) path = argv[i];
        else if (!ref) ref = argv[i];
        else return usage_error("unexpected argument");
    }
    if (!path || !ref) return usage_error("missing S.db or PROBE");
    pl_store *s;
    if (pl_store_open(&s, path, PL_STORE_WRITE)) return pl_print_error(), 1;
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
    if (json) printf("{\"probe\": \"%s\", \"runs\": %d, \"values\": %lld, \"seconds\": %.3f}\n", ref, n, (long long)scored, pl_now_sec() - t0);
    else printf("probe %s: scored %lld tokens of %d run(s) into probe_outputs (%.2f s)\n", ref, (long long)scored, n, pl_now_sec() - t0);
    status = 0;
done:
    if (status) pl_print_error();
    free(ids);
    pl_store_close(s);
    return status;
}

int cmd_probe(int argc, char **argv) {
    if (argc < 2 || cli_is_help(argv[1])) return printf("%s", probe_usage), argc < 2 ? 2 : 0;
    if (strcmp(argv[1], "train") == 0) return probe_train(argc, argv);
    if (strcmp(argv[1], "apply") == 0) return probe_apply(argc, argv);
    if (strcmp(argv[1], "list") == 0) return probe_list(argc, argv);
    if (strcmp(argv[1], "show") == 0) return probe_show(argc, argv);
    return usage_error("unknown subcommand (train, apply, list, show)");
}
