// The pre-CoT analysis: probes by layer at the last prompt token, steering along the probe
// direction against an orthogonal control, and the CoT taxonomy of the steered generations.
#include "probes/precot/precot.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/tasks.h"
#include "runtime/base/rng.h"
#include "probes/probe_store.h"
#include "runtime/base/clock.h"
#include "runtime/base/error.h"
#include "runtime/hooks.h"
#include "runtime/tokenizer/tokenizer.h"

#define N_CLASSES_COT (PL_COT_UNCHECKED + 1)

pl_precot_options pl_precot_defaults(void) {
    pl_precot_options o = {0};
    // w has the norm of the whole residual vector, so |alpha| >= 2 mostly destroys the generation
    // (no answer at all); the fractional values are where probe and control directions differ.
    static const float alphas[] = {-8, -4, -2, -1, -0.5f, -0.25f, 0, 0.25f, 0.5f, 1, 2, 4, 8};
    o.n_alphas = (int)(sizeof alphas / sizeof alphas[0]);
    memcpy(o.alphas, alphas, sizeof alphas);
    o.n_steer = 40;
    o.max_new = 96;
    o.n_folds = 5;
    o.n_bootstrap = 1000;
    return o;
}

void pl_wilson_interval(double *lo, double *hi, int k, int n) {
    if (n <= 0) { *lo = *hi = NAN; return; }
    double z = 1.959963984540054, p = (double)k / n, z2n = z * z / n;
    double c = (p + z2n / 2) / (1 + z2n), h = z * sqrt(p * (1 - p) / n + z2n / (4.0 * n)) / (1 + z2n);
    *lo = fmax(0, c - h), *hi = fmin(1, c + h);
}

// ---- steering pieces -----------------------------------------------------------------------------

int pl_steer_direction(float *out, const pl_probe *p, int from, int to, double norm) {
    if (p->kind == PL_PROBE_RIDGE) return pl_fail("steering needs a classifier probe");
    if (from < 0 || to < 0 || from >= p->n_classes || to >= p->n_classes || from == to)
        return pl_fail("steering: class indices %d -> %d invalid for %d classes", from, to, p->n_classes);
    double ss = 0;
    for (int j = 0; j < p->d; j++) {
        // d(logit_to - logit_from)/dx in raw coordinates: the probe acts on (x - mean) / std.
        double g;
        if (p->kind == PL_PROBE_BINARY) g = (to == 1 ? 1.0 : -1.0) * p->weights[j];
        else g = (double)p->weights[(size_t)to * p->d + j] - p->weights[(size_t)from * p->d + j];
        g /= p->std[j];
        out[j] = (float)g;
        ss += g * g;
    }
    if (!(ss > 0)) return pl_fail("steering: the probe direction is zero");
    double scale = norm / sqrt(ss);
    for (int j = 0; j < p->d; j++) out[j] = (float)(out[j] * scale);
    return 0;
}

int pl_orthogonal_control(float *out, const float *w, int d, uint64_t seed) {
    double ww = 0;
    for (int j = 0; j < d; j++) ww += (double)w[j] * w[j];
    if (!(ww > 0)) return pl_fail("control direction: w is zero");
    double *g = malloc(sizeof(double) * (size_t)d);
    if (!g) return pl_fail("out of memory");
    pl_rng rng = pl_rng_seed(seed);
    for (int j = 0; j < d; j++) g[j] = pl_rng_normal(&rng);
    for (int pass = 0; pass < 2; pass++) {  // the second pass removes float round-off of the first
        double gw = 0;
        for (int j = 0; j < d; j++) gw += g[j] * w[j];
        for (int j = 0; j < d; j++) g[j] -= gw / ww * w[j];
    }
    double gg = 0;
    for (int j = 0; j < d; j++) gg += g[j] * g[j];
    double scale = sqrt(ww / gg);
    for (int j = 0; j < d; j++) out[j] = (float)(g[j] * scale);
    free(g);
    return 0;
}

int pl_steer_generate(char **text, pl_session *sess, const int32_t *prompt, int n_prompt, const int *layers,
                      const float *const *vectors, int n_layers, float alpha, int max_new) {
    *text = NULL;
    const pl_model *m = pl_session_model(sess);
    if (!m->tokenizer) return pl_fail("%s: the model has no tokenizer", m->path);
    pl_hooks *hooks = pl_hooks_new(&m->config);
    pl_edit *edits = calloc((size_t)(n_layers > 0 ? n_layers : 1), sizeof *edits);
    pl_generation g = {0};
    int rc = -1;
    if (!hooks || !edits) { pl_fail("out of memory"); goto done; }
    for (int i = 0; i < n_layers; i++) {
        if (layers[i] < 0 || layers[i] >= m->config.n_layers) {
            pl_fail("steering layer %d outside 0..%d", layers[i], m->config.n_layers - 1);
            goto done;
        }
        edits[i] = (pl_edit){.op = PL_EDIT_ADD, .pos_lo = 0, .pos_hi = -1, .vector = vectors[i], .alpha = alpha};
        char name[64];
        pl_hook_name(PL_HOOK_RESID_POST, layers[i], name, sizeof name);
        if (pl_hooks_add(hooks, name, pl_hook_edit, &edits[i]) < 1) goto done;
    }
    pl_session_set_hooks(sess, hooks);
    pl_sample_params sp = pl_sample_defaults();
    const char *stop[] = {"\n"};
    sp.temperature = 0, sp.max_new = max_new, sp.stop_at_eos = true, sp.stop_strings = stop, sp.n_stop_strings = 1;
    int room = pl_session_max_ctx(sess) - n_prompt;
    if (room < 1) { pl_fail("prompt of %d tokens fills the context", n_prompt); goto done; }
    if (sp.max_new > room) sp.max_new = room;
    if (pl_generate(sess, prompt, n_prompt, &sp, NULL, NULL, &g)) goto done;
    *text = pl_tokenizer_decode(m->tokenizer, g.ids, g.n);
    if (!*text) { pl_fail("out of memory"); goto done; }
    rc = 0;
done:
    pl_session_set_hooks(sess, NULL);
    pl_generation_free(&g);
    pl_hooks_free(hooks);
    free(edits);
    return rc;
}

// ---- the analysis --------------------------------------------------------------------------------

// A growing list of analysis rows whose series names it owns.
typedef struct {
    pl_analysis_row *rows;
    char **names;
    int n, cap;
} rows_buf;

static int rows_add(rows_buf *b, const char *series, double x, double y, double lo, double hi) {
    if (b->n == b->cap) {
        int cap = b->cap ? 2 * b->cap : 64;
        pl_analysis_row *r = realloc(b->rows, sizeof *r * (size_t)cap);
        if (!r) return pl_fail("out of memory");
        b->rows = r;
        char **nm = realloc(b->names, sizeof *nm * (size_t)cap);
        if (!nm) return pl_fail("out of memory");
        b->names = nm, b->cap = cap;
    }
    b->names[b->n] = strdup(series);
    if (!b->names[b->n]) return pl_fail("out of memory");
    b->rows[b->n] = (pl_analysis_row){b->names[b->n], x, y, lo, hi};
    b->n++;
    return 0;
}

static void rows_free(rows_buf *b) {
    for (int i = 0; i < b->n; i++) free(b->names[i]);
    free(b->rows), free(b->names);
    memset(b, 0, sizeof *b);
}

// Store the rows as analysis `name` of `kind` (how the figures draw it) with params (consumed).
static int rows_store(pl_store *s, rows_buf *b, const char *name, const char *kind, json_t *params) {
    for (int i = 0; i < b->n; i++) b->rows[i].series = b->names[i];
    char *text = params ? json_dumps(params, JSON_COMPACT) : NULL;
    json_decref(params);
    if (!text) return pl_fail("%s: out of memory writing the params of %s", pl_store_path(s), name);
    int rc = pl_store_put_analysis(s, name, kind, text, b->rows, b->n);
    free(text);
    return rc;
}

// Settings and drawing hints of the by-layer analyses (the keys are listed in docs/viewer.md):
// one panel per task, the baselines dashed in the colour of their probe.
static json_t *by_layer_params(const pl_precot_options *o, const char *title, const char *y_label) {
    return json_pack("{s:s, s:s, s:i, s:i, s:I, s:s, s:s, s:s, s:s, s:s, s:[s,s,s], s:{s:s, s:s, s:s}}", "hook",
                     "blocks.*.hook_resid_post", "at", "last-prompt", "folds", o->n_folds, "bootstrap", o->n_bootstrap,
                     "seed", (json_int_t)o->seed, "series_format", "<task>/<answer|gold>[/<baseline>]", "title", title,
                     "x_label", "layer (blocks.L.hook_resid_post)", "y_label", y_label, "facet", "prefix", "baselines",
                     "majority", "embed", "control", "baseline_labels", "majority", "majority class", "embed",
                     "hook_embed probe", "control", "control task");
}

static int task_listed(const char *tasks, const char *task) {
    if (!tasks) return 1;
    size_t n = strlen(task);
    for (const char *p = tasks; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, task, n) == 0) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

// Distinct tasks of the complete runs (of the chosen model) into names (max 32).
static int store_tasks(pl_store *s, int64_t model_id, const char *want, char names[][32], int *n) {
    pl_run_filter f = pl_run_filter_complete();
    f.model_id = model_id;
    pl_run_info *runs;
    int nr;
    if (pl_store_list_runs(s, &f, &runs, &nr)) return -1;
    *n = 0;
    for (int i = 0; i < nr; i++) {
        if (!task_listed(want, runs[i].task)) continue;
        int j = 0;
        while (j < *n && strcmp(names[j], runs[i].task) != 0) j++;
        if (j == *n && *n < 32) snprintf(names[(*n)++], 32, "%s", runs[i].task);
    }
    free(runs);
    if (*n == 0) return pl_fail("%s: no complete runs%s%s", pl_store_path(s), want ? " of tasks " : "", want ? want : "");
    return 0;
}

static void report_sweep(FILE *r, const char *task, const char *label, const pl_probe_sweep *sw) {
    if (!r) return;
    fprintf(r, "\n%s, label '%s': %lld examples, %d classes (%lld runs skipped)\n", task, label, (long long)sw->rows.n,
            sw->rows.n_classes, (long long)sw->rows.n_skipped);
    fprintf(r, "  %-26s %-22s %-22s %-8s %-8s %-8s %s\n", "hook", "AUROC [95% CI]", "accuracy [95% CI]", "logloss",
            "majority", "control", "selectivity");
    for (int i = 0; i <= sw->n_layers; i++) {
        const pl_probe_layer *L = i < sw->n_layers ? &sw->layers[i] : sw->has_embed ? &sw->embed : NULL;
        if (!L) break;
        const pl_probe_metrics *m = &L->probe->metrics;
        fprintf(r, "  %-26s %.3f [%.3f, %.3f]   %.3f [%.3f, %.3f]   %-8.3f %-8.3f %-8.3f %+.3f\n", L->hook, m->auroc,
                m->auroc_lo, m->auroc_hi, m->accuracy, m->accuracy_lo, m->accuracy_hi, m->log_loss, m->majority_accuracy,
                m->control_accuracy, m->selectivity);
    }
}

// Rows of the decoding analyses for one (task, label) sweep.
static int add_sweep_rows(rows_buf *auroc, rows_buf *acc, rows_buf *ll, rows_buf *sel, const char *task,
                          const char *label, const pl_probe_sweep *sw) {
    char base[96], name[128];
    snprintf(base, sizeof base, "%s/%s", task, label);
    const pl_probe_metrics *e = sw->has_embed ? &sw->embed.probe->metrics : NULL;
    for (int i = 0; i < sw->n_layers; i++) {
        const pl_probe_metrics *m = &sw->layers[i].probe->metrics;
        double x = sw->layers[i].layer;
        if (rows_add(auroc, base, x, m->auroc, m->auroc_lo, m->auroc_hi)) return -1;
        if (rows_add(acc, base, x, m->accuracy, m->accuracy_lo, m->accuracy_hi)) return -1;
        if (rows_add(ll, base, x, m->log_loss, m->log_loss_lo, m->log_loss_hi)) return -1;
        snprintf(name, sizeof name, "%s/majority", base);
        if (rows_add(acc, name, x, m->majority_accuracy, NAN, NAN)) return -1;
        snprintf(name, sizeof name, "%s/control", base);
        if (rows_add(acc, name, x, m->control_accuracy, NAN, NAN)) return -1;
        // Selectivity is a difference of accuracies: its own analysis, not a line among rates.
        if (rows_add(sel, base, x, m->selectivity, NAN, NAN)) return -1;
        if (e) {  // the hook_embed baseline, repeated at every layer so it draws as a flat line
            snprintf(name, sizeof name, "%s/embed", base);
            if (rows_add(auroc, name, x, e->auroc, e->auroc_lo, e->auroc_hi)) return -1;
            if (rows_add(acc, name, x, e->accuracy, e->accuracy_lo, e->accuracy_hi)) return -1;
            if (rows_add(ll, name, x, e->log_loss, e->log_loss_lo, e->log_loss_hi)) return -1;
        }
    }
    return 0;
}

// Steering tallies of one task: per direction (0 probe, 1 control) and alpha.
typedef struct {
    int n[2][PL_PRECOT_MAX_ALPHAS];
    int flipped[2][PL_PRECOT_MAX_ALPHAS];
    int to_target[2][PL_PRECOT_MAX_ALPHAS];
    int cls[2][PL_PRECOT_MAX_ALPHAS][N_CLASSES_COT];
} steer_tally;

static const char *dir_name[2] = {"probe", "control"};

static int add_steer_rows(rows_buf *flip, rows_buf *tax, const char *task, const steer_tally *t, const pl_precot_options *o) {
    char name[128];
    for (int dir = 0; dir < 2; dir++)
        for (int a = 0; a < o->n_alphas; a++) {
            int n = t->n[dir][a];
            if (n == 0) continue;
            double lo, hi, x = o->alphas[a];
            pl_wilson_interval(&lo, &hi, t->flipped[dir][a], n);
            snprintf(name, sizeof name, "%s/%s", task, dir_name[dir]);
            if (rows_add(flip, name, x, (double)t->flipped[dir][a] / n, lo, hi)) return -1;
            pl_wilson_interval(&lo, &hi, t->to_target[dir][a], n);
            snprintf(name, sizeof name, "%s/%s/to-target", task, dir_name[dir]);
            if (rows_add(flip, name, x, (double)t->to_target[dir][a] / n, lo, hi)) return -1;
            for (int c = 0; c < N_CLASSES_COT; c++) {
                snprintf(name, sizeof name, "%s/%s/%s", task, dir_name[dir], pl_cot_class_name((pl_cot_class)c));
                if (rows_add(tax, name, x, t->cls[dir][a][c], NAN, NAN)) return -1;
            }
        }
    return 0;
}

static void report_steer(FILE *r, const char *task, const steer_tally *t, const pl_precot_options *o) {
    if (!r) return;
    fprintf(r, "\n%s steering: flip rate [Wilson 95%% CI], to-target rate; taxonomy of the steered CoTs\n", task);
    fprintf(r, "  %-8s %6s %4s %-22s %-9s %5s %5s %5s %5s %5s %5s\n", "dir", "alpha", "n", "flip rate", "to-target", "sound",
            "n-ent", "conf", "hall", "inc", "noans");
    for (int dir = 0; dir < 2; dir++)
        for (int a = 0; a < o->n_alphas; a++) {
            int n = t->n[dir][a];
            if (!n) continue;
            double lo, hi;
            pl_wilson_interval(&lo, &hi, t->flipped[dir][a], n);
            const int *c = t->cls[dir][a];
            fprintf(r, "  %-8s %6g %4d %.3f [%.3f, %.3f]   %-9.3f %5d %5d %5d %5d %5d %5d\n", dir_name[dir], o->alphas[a], n,
                    (double)t->flipped[dir][a] / n, lo, hi, (double)t->to_target[dir][a] / n, c[PL_COT_SOUND],
                    c[PL_COT_NON_ENTAILMENT], c[PL_COT_CONFABULATION], c[PL_COT_HALLUCINATION], c[PL_COT_INCOMPLETE],
                    c[PL_COT_NO_ANSWER]);
        }
}

// Index of the probe's class whose name equals text, or -1.
static int probe_class_of(const pl_probe *p, const pl_probe_rows *r, const char *text) {
    for (int c = 0; c < r->n_classes; c++)
        if (strcmp(r->class_names[c], text) == 0) {
            int32_t v = c, idx;
            pl_probe_class_index(&idx, p, &v, 1);
            return idx;
        }
    return -1;
}

// Steer n_steer items of one task; adds to *t. sw holds the task's own-answer probes.
static int steer_task(steer_tally *t, pl_store *s, pl_session *sess, const char *task, const pl_probe_sweep *sw,
                      const pl_precot_options *o, const int *layers, int n_layers) {
    const pl_probe_rows *rows = &sw->rows;
    int d = rows->d, rc = -1;
    const pl_probe_layer *pls[PL_PRECOT_MAX_LAYERS];
    for (int i = 0; i < n_layers; i++) {
        pls[i] = NULL;
        for (int j = 0; j < sw->n_layers; j++)
            if (sw->layers[j].layer == layers[i]) pls[i] = &sw->layers[j];
        if (!pls[i]) return pl_fail("steering layer %d has no probe (hooks recorded: blocks.*.hook_resid_post)", layers[i]);
    }
    float *vec = malloc(sizeof(float) * (size_t)d * (size_t)n_layers * 2);
    int64_t *order = malloc(sizeof(int64_t) * (size_t)(rows->n > 0 ? rows->n : 1));
    if (!vec || !order) { free(vec), free(order); return pl_fail("out of memory"); }
    const float *probe_vecs[PL_PRECOT_MAX_LAYERS], *control_vecs[PL_PRECOT_MAX_LAYERS];
    for (int i = 0; i < n_layers; i++) probe_vecs[i] = vec + (size_t)i * d, control_vecs[i] = vec + (size_t)(n_layers + i) * d;
    // A seeded order of the task's runs; take the first n_steer usable ones.
    pl_rng rng = pl_rng_seed(o->seed ^ 0x5eed5eedULL);
    for (int64_t i = 0; i < rows->n; i++) order[i] = i;
    for (int64_t i = rows->n - 1; i > 0; i--) {
        int64_t j = (int64_t)pl_rng_below(&rng, (uint64_t)i + 1), tmp = order[i];
        order[i] = order[j], order[j] = tmp;
    }
    int done = 0;
    char *text = NULL;
    pl_token_row *tok = NULL;
    int32_t *ids = NULL;
    pl_example ex = {0};
    for (int64_t k = 0; k < rows->n && done < o->n_steer; k++) {
        int64_t run_id = rows->run_ids[order[k]];
        pl_run_info run;
        if (pl_store_get_run(s, run_id, &run)) goto fail;
        if (!o->steer_all && run.correct != 1) continue;
        pl_example_free_fields(&ex);
        if (pl_store_sql_run_example(s, run_id, &ex)) goto fail;
        int nt;
        free(tok), tok = NULL;
        if (pl_store_get_tokens(s, run_id, &tok, &nt)) goto fail;
        free(ids);
        ids = malloc(sizeof(int32_t) * (size_t)run.n_prompt);
        if (!ids) { pl_fail("out of memory"); goto fail; }
        for (int i = 0; i < run.n_prompt; i++) ids[i] = tok[i].id;
        // The unsteered greedy answer: what the flips are measured against.
        free(text), text = NULL;
        if (pl_steer_generate(&text, sess, ids, run.n_prompt, NULL, NULL, 0, 0, o->max_new)) goto fail;
        pl_cot_check base;
        pl_check_cot(&base, &ex, text);
        if (!base.has_answer || (!o->steer_all && !base.correct)) continue;
        int from = probe_class_of(pls[0]->probe, rows, base.answer);
        if (from < 0) continue;  // an answer the probe never saw: no direction away from it
        int n_cls = pls[0]->probe->n_classes;
        int to = (int)pl_rng_below(&rng, (uint64_t)(n_cls - 1));
        if (to >= from) to++;
        const char *target = rows->class_names[pls[0]->probe->classes[to]];
        int ok = 1;
        for (int i = 0; i < n_layers && ok; i++) {
            const pl_probe *p = pls[i]->probe;
            int f = probe_class_of(p, rows, base.answer), tt = probe_class_of(p, rows, target);
            if (f < 0 || tt < 0) { ok = 0; break; }
            if (pl_steer_direction((float *)probe_vecs[i], p, f, tt, pls[i]->mean_norm)) goto fail;
            uint64_t cseed = o->seed * 1000003ULL + (uint64_t)run_id * 131ULL + (uint64_t)layers[i];
            if (pl_orthogonal_control((float *)control_vecs[i], probe_vecs[i], d, cseed)) goto fail;
        }
        if (!ok) continue;
        for (int a = 0; a < o->n_alphas; a++)
            for (int dir = 0; dir < 2; dir++) {
                pl_cot_check c = base;
                if (o->alphas[a] != 0) {
                    free(text), text = NULL;
                    if (pl_steer_generate(&text, sess, ids, run.n_prompt, layers, dir ? control_vecs : probe_vecs, n_layers,
                                          o->alphas[a], o->max_new))
                        goto fail;
                    pl_check_cot(&c, &ex, text);
                }
                t->n[dir][a]++;
                if (!c.has_answer || strcmp(c.answer, base.answer) != 0) t->flipped[dir][a]++;
                if (c.has_answer && strcmp(c.answer, target) == 0) t->to_target[dir][a]++;
                t->cls[dir][a][pl_cot_classify(&c)]++;
            }
        done++;
        if (o->log && done % 10 == 0) fprintf(o->log, "  %s: steered %d/%d items\n", task, done, o->n_steer), fflush(o->log);
    }
    if (o->log) fprintf(o->log, "  %s: steered %d item(s)\n", task, done);
    rc = 0;
fail:
    pl_example_free_fields(&ex);
    free(text), free(tok), free(ids), free(vec), free(order);
    return rc;
}

static int best_layer(const pl_probe_sweep *sw) {
    int best = 0;
    for (int i = 1; i < sw->n_layers; i++)
        if (sw->layers[i].probe->metrics.auroc > sw->layers[best].probe->metrics.auroc) best = i;
    return sw->layers[best].layer;
}

int pl_precot_run(pl_store *s, const pl_precot_options *o, FILE *report) {
    double t0 = pl_now_sec();
    char tasks[32][32];
    int n_tasks = 0, rc = -1, n_ok = 0;
    rows_buf auroc = {0}, acc = {0}, ll = {0}, sel = {0}, flip = {0}, tax = {0};
    pl_model *model = NULL;
    pl_session *sess = NULL;
    steer_tally *tally = NULL;
    pl_probe_sweep own[32];
    int have_own[32] = {0};
    memset(own, 0, sizeof own);
    if (o->n_alphas < 1 || o->n_alphas > PL_PRECOT_MAX_ALPHAS) return pl_fail("precot: 1..%d alphas", PL_PRECOT_MAX_ALPHAS);
    int64_t model_id;  // one model: --model-id, or the store's only one
    if (pl_store_resolve_model(s, o->model_id, &model_id)) return -1;
    if (store_tasks(s, model_id, o->tasks, tasks, &n_tasks)) return -1;
    char last_err[512] = "";
    for (int ti = 0; ti < n_tasks; ti++)
        for (int li = 0; li < 2; li++) {
            const char *label = li == 0 ? "answer" : "gold";
            pl_probe_train_options to = pl_probe_train_defaults();
            to.sel.label = label;
            to.sel.task = tasks[ti];
            to.sel.model_id = model_id;
            to.eval.cv.n_folds = o->n_folds;
            to.eval.cv.seed = o->seed;
            to.eval.seed = o->seed;
            to.eval.n_bootstrap = o->n_bootstrap;
            char prefix[64];
            snprintf(prefix, sizeof prefix, "precot/%s/", tasks[ti]);
            to.name_prefix = prefix;
            pl_probe_sweep sw;
            if (o->log) fprintf(o->log, "precot: %s / %s: fitting probes by layer\n", tasks[ti], label);
            if (pl_probe_train_sweep(&sw, s, &to)) {
                snprintf(last_err, sizeof last_err, "%s", pl_errmsg());
                if (report) fprintf(report, "\n%s, label '%s': skipped: %s\n", tasks[ti], label, last_err);
                continue;
            }
            n_ok++;
            report_sweep(report, tasks[ti], label, &sw);
            if (add_sweep_rows(&auroc, &acc, &ll, &sel, tasks[ti], label, &sw)) {
                pl_probe_sweep_free(&sw);
                goto done;
            }
            if (li == 0) own[ti] = sw, have_own[ti] = 1;
            else pl_probe_sweep_free(&sw);
        }
    if (n_ok == 0) {
        pl_fail("precot: no task could be probed (%s)", last_err);
        goto done;
    }
    json_t *p_auroc = by_layer_params(o, "Pre-CoT probes: AUROC by layer (last prompt token)", "AUROC (held-out, 95% CI)");
    // Accuracy shows the model's own answer by default: with three baselines per probe, gold and
    // answer together make an unreadable legend (--series '*/gold*' draws the gold answer).
    json_t *p_acc = by_layer_params(o, "Pre-CoT probes: accuracy by layer for the model's own answer (last prompt token)",
                                    "accuracy (held-out, 95% CI)");
    if (p_acc) json_object_set_new(p_acc, "default_series", json_string("*/answer*"));
    json_t *p_ll = by_layer_params(o, "Pre-CoT probes: log-loss by layer (last prompt token)", "log-loss (nats, held-out)");
    json_t *p_sel = by_layer_params(o, "Pre-CoT probes: selectivity by layer (Hewitt & Liang)",
                                    "selectivity (acc. − control acc.)");
    if (p_auroc) json_object_set_new(p_auroc, "hline", json_real(0.5));  // chance AUROC
    if (p_auroc) json_object_set_new(p_auroc, "y_max", json_real(1.0));
    if (p_acc) json_object_set_new(p_acc, "y_min", json_real(0.0)), json_object_set_new(p_acc, "y_max", json_real(1.0));
    if (p_ll) json_object_set_new(p_ll, "y_min", json_real(0.0));
    if (p_sel) json_object_set_new(p_sel, "hline", json_real(0.0));
    if (rows_store(s, &auroc, "precot.auroc_by_layer", "by_layer", p_auroc) ||
        rows_store(s, &acc, "precot.accuracy_by_layer", "by_layer", p_acc) ||
        rows_store(s, &ll, "precot.log_loss_by_layer", "by_layer", p_ll) ||
        rows_store(s, &sel, "precot.selectivity_by_layer", "by_layer", p_sel))
        goto done;

    if (o->n_steer > 0) {
        // The probes are only meaningful for the model that was traced: its identity must match.
        char model_file[1024];
        if (pl_store_model_file(s, model_id, o->model_path, model_file, sizeof model_file)) goto done;
        if (pl_model_load(model_file, &model) || pl_session_new(model, 0, &sess)) goto done;
        tally = calloc((size_t)n_tasks, sizeof *tally);
        if (!tally) { pl_fail("out of memory"); goto done; }
        steer_tally all = {0};
        for (int ti = 0; ti < n_tasks; ti++) {
            if (!have_own[ti]) continue;
            int layers[PL_PRECOT_MAX_LAYERS], n_layers = o->n_layers;
            if (n_layers > 0) memcpy(layers, o->layers, sizeof(int) * (size_t)n_layers);
            else layers[0] = best_layer(&own[ti]), n_layers = 1;
            // Steering reads the probe of each chosen layer; rows.d is the residual width.
            if (pl_probe_rows_read(&own[ti].rows, s, own[ti].layers[0].hook)) goto done;
            if (report) {
                fprintf(report, "\n%s: steering at layer(s)", tasks[ti]);
                for (int i = 0; i < n_layers; i++) fprintf(report, " %d", layers[i]);
                fprintf(report, " toward a random other answer (norm = mean |resid| of the layer)\n");
            }
            if (steer_task(&tally[ti], s, sess, tasks[ti], &own[ti], o, layers, n_layers)) goto done;
            report_steer(report, tasks[ti], &tally[ti], o);
            if (add_steer_rows(&flip, &tax, tasks[ti], &tally[ti], o)) goto done;
            for (int dir = 0; dir < 2; dir++)
                for (int a = 0; a < o->n_alphas; a++) {
                    all.n[dir][a] += tally[ti].n[dir][a];
                    all.flipped[dir][a] += tally[ti].flipped[dir][a];
                    all.to_target[dir][a] += tally[ti].to_target[dir][a];
                    for (int c = 0; c < N_CLASSES_COT; c++) all.cls[dir][a][c] += tally[ti].cls[dir][a][c];
                }
        }
        if (n_tasks > 1) report_steer(report, "all tasks", &all, o);
        if (add_steer_rows(&flip, &tax, "all", &all, o)) goto done;
        // Settings, the number of steered items per task (every item is generated at every α in
        // both directions) and drawing hints: one panel per task, "all" last.
        json_t *alphas = json_array(), *n_items = json_object(), *facet_order = json_array(), *titles = json_object(),
               *tax_titles = json_object(), *tax_order = json_array();
        for (int a = 0; a < o->n_alphas; a++) json_array_append_new(alphas, json_real(o->alphas[a]));
        for (int ti = 0; ti <= n_tasks; ti++) {
            const char *task = ti < n_tasks ? tasks[ti] : "all";
            if (ti < n_tasks && !have_own[ti]) continue;
            int n = ti < n_tasks ? tally[ti].n[0][0] : all.n[0][0];
            char title[96];
            snprintf(title, sizeof title, "%s (n = %d item%s)", ti < n_tasks ? task : "all tasks", n, n == 1 ? "" : "s");
            json_object_set_new(n_items, task, json_integer(n));
            json_array_append_new(facet_order, json_string(task));
            json_object_set_new(titles, task, json_string(title));
            for (int dir = 0; dir < 2; dir++) {
                char key[64], t2[160];
                snprintf(key, sizeof key, "%s/%s", task, dir_name[dir]);
                json_array_append_new(tax_order, json_string(key));
                snprintf(t2, sizeof t2, "%s, %s", dir ? "orthogonal control" : "probe direction", title);
                json_object_set_new(tax_titles, key, json_string(t2));
            }
        }
        json_t *p_flip = json_pack(
            "{s:i, s:i, s:I, s:s, s:o, s:o, s:s, s:s, s:s, s:s, s:s, s:f, s:f, s:[s], s:o, s:o, s:[s], s:{s:s}, s:{s:s, s:s}}",
            "n_steer", o->n_steer, "steer_all", o->steer_all, "seed", (json_int_t)o->seed, "layers",
            o->n_layers ? "given" : "best-auroc", "alphas", json_deep_copy(alphas), "n_items", json_deep_copy(n_items),
            "series_format", "<task|all>/<probe|control>[/to-target]", "title",
            "Answer flip rate when steering along the probe direction vs an orthogonal one (α × mean residual norm)", "x_label",
            "steering strength α", "y_label", "answer flip rate (Wilson 95% CI)", "facet", "prefix",
            "y_min", 0.0, "y_max", 1.0, "series_order", "probe", "facet_order", facet_order, "panel_titles", titles,
            "baselines", "to-target", "baseline_labels", "to-target", "to target", "series_labels",
            "probe", "probe", "control", "orthogonal");
        json_t *p_tax = json_pack(
            "{s:i, s:i, s:I, s:o, s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:[s,s,s,s,s,s,s], s:o, s:o}", "n_steer",
            o->n_steer, "steer_all", o->steer_all, "seed", (json_int_t)o->seed, "alphas", alphas, "n_items", n_items,
            "series_format", "<task|all>/<probe|control>/<cot class>", "title",
            "Taxonomy of the steered chains of thought by steering strength", "x_label",
            "steering strength α", "y_label", "steered chains of thought", "facet", "prefix", "default_series", "all/*",
            "facet_depth", 2, "series_order", "sound", "non-entailment", "confabulation", "hallucination", "incomplete",
            "no-answer", "unchecked", "panel_titles", tax_titles, "facet_order", tax_order);
        if (rows_store(s, &flip, "precot.flip_rate", "flip_rate", p_flip) ||
            rows_store(s, &tax, "precot.taxonomy", "counts", p_tax))
            goto done;
    }
    if (report) fprintf(report, "\nprecot: done in %.1f s; analyses stored in %s\n", pl_now_sec() - t0, pl_store_path(s));
    rc = 0;
done:
    for (int ti = 0; ti < n_tasks; ti++)
        if (have_own[ti]) pl_probe_sweep_free(&own[ti]);
    rows_free(&auroc), rows_free(&acc), rows_free(&ll), rows_free(&sel), rows_free(&flip), rows_free(&tax);
    free(tally);
    pl_session_free(sess);
    pl_model_free(model);
    return rc;
}
