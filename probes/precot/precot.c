// The pre-CoT analysis: probes by layer at the last prompt token, steering along the probe
// direction against an orthogonal control, and the CoT taxonomy of the steered generations.
#include "probes/precot/precot.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/tasks.h"
#include "probes/linear/controls.h"
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
    o.n_splits = 5;
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
// one panel per task, the baselines and controls dashed in the colour of their probe.
static json_t *by_layer_params(const pl_precot_options *o, const char *title, const char *y_label) {
    return json_pack("{s:s, s:s, s:i, s:i, s:i, s:I, s:s?, s:s, s:s, s:s, s:s, s:s, s:[s,s,s,s,s], "
                     "s:{s:s, s:s, s:s, s:s, s:s}, s:s}",
                     "hook", "blocks.*.hook_resid_post", "at", "last-prompt", "folds", o->n_folds, "bootstrap",
                     o->n_bootstrap, "splits", o->n_splits, "seed", (json_int_t)o->seed, "by", o->by, "series_format",
                     "<task>[@<value>]/<answer|gold>[/<baseline>]", "title", title, "x_label",
                     "layer (blocks.L.hook_resid_post)", "y_label", y_label, "facet", "prefix", "baselines", "input",
                     "embed", "shuffled", "majority", "control", "baseline_labels", "input", "input only (strongest)",
                     "embed", "hook_embed probe", "shuffled", "shuffled labels", "majority", "majority class", "control",
                     "control task", "hide_series", "*@*");
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

static void report_sweep(FILE *r, const char *cell, const char *label, const pl_probe_sweep *sw) {
    if (!r) return;
    fprintf(r, "\n%s, label '%s': %lld examples, %d classes (%lld runs skipped); mean over %d split(s)\n", cell, label,
            (long long)sw->rows.n, sw->rows.n_classes, (long long)sw->rows.n_skipped, sw->n_splits);
    if (sw->best_input >= 0) {
        fprintf(r, "  input-only baselines (AUROC ± sd over splits):");
        for (int k = 0; k < PL_INPUT_KINDS; k++)
            if (sw->inputs[k].available)
                fprintf(r, " %s %.3f ± %.3f%s", pl_input_kind_name(k), sw->inputs[k].metrics.auroc,
                        sw->inputs[k].metrics.auroc_sd, k == sw->best_input ? " (strongest)" : "");
        fprintf(r, "\n");
    }
    fprintf(r, "  %-26s %-30s %-8s %-8s %-8s %-8s %-8s %-8s %s\n", "hook", "AUROC [95% CI] ± sd", "−input", "shuffled",
            "accuracy", "majority", "control", "ECE", "wrong: own / gold");
    for (int i = 0; i <= sw->n_layers; i++) {
        const pl_probe_layer *L = i < sw->n_layers ? &sw->layers[i] : sw->has_embed ? &sw->embed : NULL;
        if (!L) break;
        const pl_probe_metrics *m = &L->probe->metrics;
        fprintf(r, "  %-26s %.3f [%.3f, %.3f] ± %.3f   %+-8.3f %-8.3f %-8.3f %-8.3f %-8.3f %-8.3f", L->hook, m->auroc,
                m->auroc_lo, m->auroc_hi, m->auroc_sd, m->auroc - m->input_auroc, m->shuffled_auroc, m->accuracy,
                m->majority_accuracy, m->control_accuracy, m->ece);
        if (m->n_wrong > 0) fprintf(r, " %.2f / %.2f (n %lld)", m->wrong_own, m->wrong_gold, (long long)m->n_wrong);
        fprintf(r, "\n");
    }
}

// The analyses' rows, one buffer per analysis.
enum { A_AUROC, A_ACC, A_LL, A_SEL, A_SD, A_ECE, A_WRONG, A_FLIP, A_TAX, N_ANALYSES };

// Rows of the decoding analyses for one (cell, label) sweep; cell is "<task>" or "<task>@<value>".
static int add_sweep_rows(rows_buf *b, json_t *inputs, const char *cell, const char *label, const pl_probe_sweep *sw) {
    char base[160], name[200];
    snprintf(base, sizeof base, "%s/%s", cell, label);
    const pl_probe_metrics *e = sw->has_embed ? &sw->embed.probe->metrics : NULL;
    const pl_probe_metrics *in = sw->best_input >= 0 ? &sw->inputs[sw->best_input].metrics : NULL;
    if (in) {
        json_t *o = json_object();
        for (int k = 0; k < PL_INPUT_KINDS; k++)
            if (sw->inputs[k].available)
                json_object_set_new(o, pl_input_kind_name(k),
                                    json_pack("{s:f, s:f, s:f, s:i}", "auroc", sw->inputs[k].metrics.auroc, "auroc_sd",
                                              isfinite(sw->inputs[k].metrics.auroc_sd) ? sw->inputs[k].metrics.auroc_sd : 0.0,
                                              "accuracy", sw->inputs[k].metrics.accuracy, "d", sw->inputs[k].d));
        json_object_set_new(o, "strongest", json_string(pl_input_kind_name(sw->best_input)));
        json_object_set_new(inputs, base, o);
    }
    for (int i = 0; i < sw->n_layers; i++) {
        const pl_probe_metrics *m = &sw->layers[i].probe->metrics;
        double x = sw->layers[i].layer;
        if (rows_add(&b[A_AUROC], base, x, m->auroc, m->auroc_lo, m->auroc_hi)) return -1;
        if (rows_add(&b[A_ACC], base, x, m->accuracy, m->accuracy_lo, m->accuracy_hi)) return -1;
        if (rows_add(&b[A_LL], base, x, m->log_loss, m->log_loss_lo, m->log_loss_hi)) return -1;
        if (rows_add(&b[A_SD], base, x, m->auroc_sd, NAN, NAN)) return -1;
        if (rows_add(&b[A_ECE], base, x, m->ece, NAN, NAN)) return -1;
        snprintf(name, sizeof name, "%s/majority", base);
        if (rows_add(&b[A_ACC], name, x, m->majority_accuracy, NAN, NAN)) return -1;
        snprintf(name, sizeof name, "%s/control", base);
        if (rows_add(&b[A_ACC], name, x, m->control_accuracy, NAN, NAN)) return -1;
        snprintf(name, sizeof name, "%s/shuffled", base);  // fitted where they steer: the own answer
        if (isfinite(m->shuffled_auroc) && rows_add(&b[A_AUROC], name, x, m->shuffled_auroc, NAN, NAN)) return -1;
        if (isfinite(m->shuffled_accuracy) && rows_add(&b[A_ACC], name, x, m->shuffled_accuracy, NAN, NAN)) return -1;
        // Selectivity is a difference of accuracies: its own analysis, not a line among rates.
        if (rows_add(&b[A_SEL], base, x, m->selectivity, NAN, NAN)) return -1;
        if (strcmp(label, "answer") == 0 && m->n_wrong > 0) {  // the runs the model got wrong
            double lo, hi;
            int k = (int)lround(m->wrong_own * (double)m->n_wrong), g = (int)lround(m->wrong_gold * (double)m->n_wrong);
            snprintf(name, sizeof name, "%s/own", cell);
            pl_wilson_interval(&lo, &hi, k, (int)m->n_wrong);
            if (rows_add(&b[A_WRONG], name, x, m->wrong_own, lo, hi)) return -1;
            snprintf(name, sizeof name, "%s/gold", cell);
            pl_wilson_interval(&lo, &hi, g, (int)m->n_wrong);
            if (rows_add(&b[A_WRONG], name, x, m->wrong_gold, lo, hi)) return -1;
        }
        if (e) {  // the hook_embed baseline, repeated at every layer so it draws as a flat line
            snprintf(name, sizeof name, "%s/embed", base);
            if (rows_add(&b[A_AUROC], name, x, e->auroc, e->auroc_lo, e->auroc_hi)) return -1;
            if (rows_add(&b[A_ACC], name, x, e->accuracy, e->accuracy_lo, e->accuracy_hi)) return -1;
            if (rows_add(&b[A_LL], name, x, e->log_loss, e->log_loss_lo, e->log_loss_hi)) return -1;
        }
        if (in) {  // the strongest input-only baseline, flat as well
            snprintf(name, sizeof name, "%s/input", base);
            if (rows_add(&b[A_AUROC], name, x, in->auroc, in->auroc_lo, in->auroc_hi)) return -1;
            if (rows_add(&b[A_ACC], name, x, in->accuracy, in->accuracy_lo, in->accuracy_hi)) return -1;
            if (rows_add(&b[A_LL], name, x, in->log_loss, in->log_loss_lo, in->log_loss_hi)) return -1;
        }
    }
    return 0;
}

// Steering directions: the probe's and its three controls, all at the same layer, positions and norm.
#define N_DIRS 4
static const char *const dir_name[N_DIRS] = {"probe", "orthogonal", "covariance", "shuffled"};
static const char *const dir_title[N_DIRS] = {"probe direction", "isotropic orthogonal control",
                                              "covariance-matched control", "shuffled-label probe"};

// Steering tallies of one cell (a task, a task@value, or all): per direction and alpha.
typedef struct {
    int n[N_DIRS][PL_PRECOT_MAX_ALPHAS];
    int flipped[N_DIRS][PL_PRECOT_MAX_ALPHAS];
    int to_target[N_DIRS][PL_PRECOT_MAX_ALPHAS];
    int cls[N_DIRS][PL_PRECOT_MAX_ALPHAS][N_CLASSES_COT];
} steer_tally;

static void tally_add(steer_tally *to, const steer_tally *from) {
    for (int dir = 0; dir < N_DIRS; dir++)
        for (int a = 0; a < PL_PRECOT_MAX_ALPHAS; a++) {
            to->n[dir][a] += from->n[dir][a];
            to->flipped[dir][a] += from->flipped[dir][a];
            to->to_target[dir][a] += from->to_target[dir][a];
            for (int c = 0; c < N_CLASSES_COT; c++) to->cls[dir][a][c] += from->cls[dir][a][c];
        }
}

static int add_steer_rows(rows_buf *flip, rows_buf *tax, const char *cell, const steer_tally *t, const pl_precot_options *o) {
    char name[128];
    for (int dir = 0; dir < N_DIRS; dir++)
        for (int a = 0; a < o->n_alphas; a++) {
            int n = t->n[dir][a];
            if (n == 0) continue;
            double lo, hi, x = o->alphas[a];
            pl_wilson_interval(&lo, &hi, t->flipped[dir][a], n);
            snprintf(name, sizeof name, "%s/%s", cell, dir_name[dir]);
            if (rows_add(flip, name, x, (double)t->flipped[dir][a] / n, lo, hi)) return -1;
            pl_wilson_interval(&lo, &hi, t->to_target[dir][a], n);
            snprintf(name, sizeof name, "%s/%s/to-target", cell, dir_name[dir]);
            if (rows_add(flip, name, x, (double)t->to_target[dir][a] / n, lo, hi)) return -1;
            for (int c = 0; c < N_CLASSES_COT; c++) {
                snprintf(name, sizeof name, "%s/%s/%s", cell, dir_name[dir], pl_cot_class_name((pl_cot_class)c));
                if (rows_add(tax, name, x, t->cls[dir][a][c], NAN, NAN)) return -1;
            }
        }
    return 0;
}

static void report_steer(FILE *r, const char *cell, const steer_tally *t, const pl_precot_options *o) {
    if (!r) return;
    fprintf(r, "\n%s steering: flip rate [Wilson 95%% CI], to-target rate; taxonomy of the steered CoTs\n", cell);
    fprintf(r, "  %-10s %6s %4s %-22s %-9s %5s %5s %5s %5s %5s %5s\n", "dir", "alpha", "n", "flip rate", "to-target",
            "sound", "n-ent", "conf", "hall", "inc", "noans");
    for (int dir = 0; dir < N_DIRS; dir++)
        for (int a = 0; a < o->n_alphas; a++) {
            int n = t->n[dir][a];
            if (!n) continue;
            double lo, hi;
            pl_wilson_interval(&lo, &hi, t->flipped[dir][a], n);
            const int *c = t->cls[dir][a];
            fprintf(r, "  %-10s %6g %4d %.3f [%.3f, %.3f]   %-9.3f %5d %5d %5d %5d %5d %5d\n", dir_name[dir], o->alphas[a],
                    n, (double)t->flipped[dir][a] / n, lo, hi, (double)t->to_target[dir][a] / n, c[PL_COT_SOUND],
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

// The --by value of a run into buf: 1, or 0 if the run has none.
static int run_by_value(pl_store *s, const pl_run_info *run, const char *key, char *buf, size_t n) {
    if (strcmp(key, "difficulty") == 0) return snprintf(buf, n, "%d", run->difficulty), 1;
    int rc = pl_store_get_label(s, run->id, key, buf, n);
    return rc == 1 && buf[0] ? 1 : rc < 0 ? -1 : 0;
}

// The distinct --by values of a task's runs, sorted (numerically when all are numbers).
typedef struct {
    char v[64][32];
    int n;
} by_values;

static int cmp_value(const void *a, const void *b) {
    const char *x = a, *y = b;
    char *ex, *ey;
    double dx = strtod(x, &ex), dy = strtod(y, &ey);
    if (!*ex && !*ey && ex != x && ey != y) return (dx > dy) - (dx < dy);
    return strcmp(x, y);
}

static int task_by_values(by_values *out, pl_store *s, int64_t model_id, const char *task, const char *key) {
    out->n = 0;
    pl_run_filter f = pl_run_filter_complete();
    f.model_id = model_id, f.task = task;
    pl_run_info *runs;
    int nr;
    if (pl_store_list_runs(s, &f, &runs, &nr)) return -1;
    for (int i = 0; i < nr; i++) {
        char v[32];
        int rc = run_by_value(s, &runs[i], key, v, sizeof v);
        if (rc < 0) { free(runs); return -1; }
        if (rc == 0) continue;
        int j = 0;
        while (j < out->n && strcmp(out->v[j], v) != 0) j++;
        if (j == out->n && out->n < 64) snprintf(out->v[out->n++], 32, "%s", v);
    }
    free(runs);
    qsort(out->v, (size_t)out->n, sizeof out->v[0], cmp_value);
    return 0;
}

// Steer n_steer items of one task; adds to t[0] and, with --by, to t[1 + index of the item's value].
// sw holds the task's own-answer probes (its rows' x is overwritten: each layer is read for the
// covariance control).
static int steer_task(steer_tally *t, pl_store *s, pl_session *sess, const char *task, pl_probe_sweep *sw,
                      const pl_precot_options *o, const int *layers, int n_layers, const by_values *bv) {
    pl_probe_rows *rows = &sw->rows;
    int d = rows->d, rc = -1;
    const pl_probe_layer *pls[PL_PRECOT_MAX_LAYERS];
    for (int i = 0; i < n_layers; i++) {
        pls[i] = NULL;
        for (int j = 0; j < sw->n_layers; j++)
            if (sw->layers[j].layer == layers[i]) pls[i] = &sw->layers[j];
        if (!pls[i]) return pl_fail("steering layer %d has no probe (hooks recorded: blocks.*.hook_resid_post)", layers[i]);
        if (!pls[i]->shuffled) return pl_fail("steering layer %d has no shuffled-label probe", layers[i]);
    }
    size_t nd = (size_t)d * (size_t)n_layers;
    float *vec = malloc(sizeof(float) * nd * N_DIRS), *acts = malloc(sizeof(float) * nd * (size_t)rows->n);
    int64_t *order = malloc(sizeof(int64_t) * (size_t)(rows->n > 0 ? rows->n : 1));
    if (!vec || !order || !acts) { free(vec), free(order), free(acts); return pl_fail("out of memory"); }
    // Each steering layer's activations over the task's runs: the covariance the matched control draws from.
    for (int i = 0; i < n_layers; i++) {
        if (pl_probe_rows_read(rows, s, pls[i]->hook)) { free(vec), free(order), free(acts); return -1; }
        memcpy(acts + (size_t)i * d * rows->n, rows->x, sizeof(float) * (size_t)d * rows->n);
    }
    const float *dir_vecs[N_DIRS][PL_PRECOT_MAX_LAYERS];
    for (int k = 0; k < N_DIRS; k++)
        for (int i = 0; i < n_layers; i++) dir_vecs[k][i] = vec + ((size_t)k * n_layers + i) * d;
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
        if (pl_probe_run_example(s, run_id, &ex)) goto fail;
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
            const pl_probe *p = pls[i]->probe, *q = pls[i]->shuffled;
            int f = probe_class_of(p, rows, base.answer), tt = probe_class_of(p, rows, target);
            int fq = probe_class_of(q, rows, base.answer), tq = probe_class_of(q, rows, target);
            if (f < 0 || tt < 0 || fq < 0 || tq < 0) { ok = 0; break; }
            float *w = (float *)dir_vecs[0][i];
            if (pl_steer_direction(w, p, f, tt, pls[i]->mean_norm)) goto fail;
            uint64_t cseed = o->seed * 1000003ULL + (uint64_t)run_id * 131ULL + (uint64_t)layers[i];
            if (pl_orthogonal_control((float *)dir_vecs[1][i], w, d, cseed)) goto fail;
            if (pl_covariance_control((float *)dir_vecs[2][i], w, acts + (size_t)i * d * rows->n, rows->n, d, cseed ^ 0xc0fULL))
                goto fail;
            if (pl_steer_direction((float *)dir_vecs[3][i], q, fq, tq, pls[i]->mean_norm)) goto fail;
        }
        if (!ok) continue;
        steer_tally *cell = NULL;  // the item's --by cell
        if (bv) {
            char v[32];
            int r = run_by_value(s, &run, o->by, v, sizeof v);
            if (r < 0) goto fail;
            for (int j = 0; r == 1 && j < bv->n; j++)
                if (strcmp(bv->v[j], v) == 0) cell = &t[1 + j];
        }
        for (int a = 0; a < o->n_alphas; a++)
            for (int dir = 0; dir < N_DIRS; dir++) {
                pl_cot_check c = base;
                if (o->alphas[a] != 0) {
                    free(text), text = NULL;
                    if (pl_steer_generate(&text, sess, ids, run.n_prompt, layers, dir_vecs[dir], n_layers, o->alphas[a],
                                          o->max_new))
                        goto fail;
                    pl_check_cot(&c, &ex, text);
                }
                int flipped = !c.has_answer || strcmp(c.answer, base.answer) != 0;
                int hit = c.has_answer && strcmp(c.answer, target) == 0;
                pl_cot_class cls = pl_cot_classify(&c);
                for (steer_tally *u = t; u; u = u == t ? cell : NULL) {
                    u->n[dir][a]++, u->flipped[dir][a] += flipped, u->to_target[dir][a] += hit;
                    u->cls[dir][a][cls]++;
                }
            }
        done++;
        if (o->log && done % 10 == 0) fprintf(o->log, "  %s: steered %d/%d items\n", task, done, o->n_steer), fflush(o->log);
    }
    if (o->log) fprintf(o->log, "  %s: steered %d item(s)\n", task, done);
    rc = 0;
fail:
    pl_example_free_fields(&ex);
    free(text), free(tok), free(ids), free(vec), free(order), free(acts);
    return rc;
}

// The steering layer, chosen without the held-out rows: the lowest cross-validated log-loss of the
// own-answer probe on split 0's training rows (the grid point lambda was chosen at).
static int select_layer(const pl_probe_sweep *sw) {
    int best = 0;
    for (int i = 1; i < sw->n_layers; i++) {
        const pl_cv_result *a = &sw->layers[i].cv, *b = &sw->layers[best].cv;
        if (a->mean_score[a->best_index] < b->mean_score[b->best_index]) best = i;
    }
    return sw->layers[best].layer;
}

// One decoding cell: the sweep of (task, label) over the runs with by = value (value NULL: all of
// the task's runs), its rows added to the analyses. *own (may be NULL) keeps the sweep.
static int decode_cell(rows_buf *b, json_t *inputs, pl_store *s, const pl_precot_options *o, int64_t model_id,
                       const char *task, const char *label, const char *value, pl_probe_sweep *own, FILE *report) {
    pl_probe_train_options to = pl_probe_train_defaults();
    to.sel.label = label;
    to.sel.task = task;
    to.sel.model_id = model_id;
    to.sel.by_key = value ? o->by : NULL;
    to.sel.by_value = value;
    to.eval.cv.n_folds = o->n_folds;
    to.eval.cv.seed = o->seed;
    to.eval.seed = o->seed;
    to.eval.n_bootstrap = o->n_bootstrap;
    to.n_splits = o->n_splits;
    // Shuffled-label probes only where they steer (own answer, pooled); input baselines everywhere.
    to.controls = PL_CONTROL_INPUT | (own ? PL_CONTROL_SHUFFLED : 0);
    to.save = value == NULL;  // the pooled probes are the ones stored (and applied, and steered with)
    char prefix[64], cell[96];
    snprintf(prefix, sizeof prefix, "precot/%s/", task);
    to.name_prefix = prefix;
    snprintf(cell, sizeof cell, "%s%s%s", task, value ? "@" : "", value ? value : "");
    pl_probe_sweep sw;
    if (o->log) fprintf(o->log, "precot: %s / %s: fitting probes by layer\n", cell, label);
    if (pl_probe_train_sweep(&sw, s, &to)) return -1;
    report_sweep(report, cell, label, &sw);
    int rc = add_sweep_rows(b, inputs, cell, label, &sw);
    if (own && rc == 0) *own = sw;
    else pl_probe_sweep_free(&sw);
    return rc;
}

int pl_precot_run(pl_store *s, const pl_precot_options *o, FILE *report) {
    double t0 = pl_now_sec();
    char tasks[32][32];
    int n_tasks = 0, rc = -1, n_ok = 0;
    rows_buf b[N_ANALYSES];
    memset(b, 0, sizeof b);
    pl_model *model = NULL;
    pl_session *sess = NULL;
    steer_tally *tally = NULL;
    pl_probe_sweep own[32];
    int have_own[32] = {0};
    by_values *bv = NULL;
    json_t *inputs = json_object();
    memset(own, 0, sizeof own);
    if (!inputs) return pl_fail("out of memory");
    if (o->n_alphas < 1 || o->n_alphas > PL_PRECOT_MAX_ALPHAS) {
        json_decref(inputs);
        return pl_fail("precot: 1..%d alphas", PL_PRECOT_MAX_ALPHAS);
    }
    int64_t model_id;  // one model: --model-id, or the store's only one
    // Steering needs the traced model file: found (and its identity checked) before any work.
    char model_file[1024] = "";
    if (pl_store_resolve_model(s, o->model_id, &model_id) || store_tasks(s, model_id, o->tasks, tasks, &n_tasks) ||
        (o->n_steer > 0 && pl_store_model_file(s, model_id, o->model_path, model_file, sizeof model_file))) {
        json_decref(inputs);
        return -1;
    }
    if (o->by) {
        bv = calloc((size_t)n_tasks, sizeof *bv);
        if (!bv) { pl_fail("out of memory"); goto done; }
        int any = 0;
        for (int ti = 0; ti < n_tasks; ti++) {
            if (task_by_values(&bv[ti], s, model_id, tasks[ti], o->by)) goto done;
            any += bv[ti].n;
        }
        if (!any) {
            pl_fail("precot --by %s: no run has '%s' (use 'difficulty' or a run label: probelab show %s RUN lists them)", o->by,
                    o->by, pl_store_path(s));
            goto done;
        }
    }
    char last_err[512] = "";
    for (int ti = 0; ti < n_tasks; ti++)
        for (int li = 0; li < 2; li++) {
            const char *label = li == 0 ? "answer" : "gold";
            if (decode_cell(b, inputs, s, o, model_id, tasks[ti], label, NULL, li == 0 ? &own[ti] : NULL, report)) {
                snprintf(last_err, sizeof last_err, "%s", pl_errmsg());
                if (report) fprintf(report, "\n%s, label '%s': skipped: %s\n", tasks[ti], label, last_err);
                continue;
            }
            n_ok++;
            if (li == 0) have_own[ti] = 1;
            for (int vi = 0; bv && vi < bv[ti].n; vi++)  // a cell too small or with one class is reported and skipped
                if (decode_cell(b, inputs, s, o, model_id, tasks[ti], label, bv[ti].v[vi], NULL, report) && report)
                    fprintf(report, "\n%s@%s, label '%s': skipped: %s\n", tasks[ti], bv[ti].v[vi], label, pl_errmsg());
        }
    if (n_ok == 0) {
        pl_fail("precot: no task could be probed (%s)", last_err);
        goto done;
    }
    json_t *p_auroc = by_layer_params(o, "Pre-CoT probes: AUROC by layer (last prompt token)", "AUROC (held-out, 95% CI)");
    // Accuracy shows the model's own answer by default: with its baselines, gold and answer
    // together make an unreadable legend (--series '*/gold*' draws the gold answer).
    json_t *p_acc = by_layer_params(o, "Pre-CoT probes: accuracy by layer for the model's own answer (last prompt token)",
                                    "accuracy (held-out, 95% CI)");
    if (p_acc) json_object_set_new(p_acc, "default_series", json_string("*/answer*"));
    json_t *p_ll = by_layer_params(o, "Pre-CoT probes: log-loss by layer (last prompt token)", "log-loss (nats, held-out)");
    json_t *p_sel = by_layer_params(o, "Pre-CoT probes: selectivity by layer (Hewitt & Liang)",
                                    "selectivity (acc. − control acc.)");
    json_t *p_sd = by_layer_params(o, "Pre-CoT probes: spread of the AUROC across held-out splits", "AUROC sd across splits");
    json_t *p_ece = by_layer_params(o, "Pre-CoT probes: calibration (ECE, 10 bins) by layer", "expected calibration error");
    json_t *p_wrong = by_layer_params(o, "Runs the model got wrong: is the own-answer probe's top class the model's answer or the gold one?",
                                      "fraction of wrong held-out runs (Wilson 95% CI)");
    if (p_auroc) json_object_set_new(p_auroc, "hline", json_real(0.5));  // chance AUROC
    if (p_auroc) json_object_set_new(p_auroc, "y_max", json_real(1.0));
    if (p_auroc) json_object_set_new(p_auroc, "input_baselines", inputs), inputs = NULL;
    if (p_acc) json_object_set_new(p_acc, "y_min", json_real(0.0)), json_object_set_new(p_acc, "y_max", json_real(1.0));
    if (p_ll) json_object_set_new(p_ll, "y_min", json_real(0.0));
    if (p_sel) json_object_set_new(p_sel, "hline", json_real(0.0));
    if (p_sd) json_object_set_new(p_sd, "y_min", json_real(0.0));
    if (p_ece) json_object_set_new(p_ece, "y_min", json_real(0.0));
    if (p_wrong) {
        json_object_set_new(p_wrong, "y_min", json_real(0.0)), json_object_set_new(p_wrong, "y_max", json_real(1.0));
        json_object_set_new(p_wrong, "series_format", json_string("<task>[@<value>]/<own|gold>"));
        json_object_set_new(p_wrong, "series_labels", json_pack("{s:s, s:s}", "own", "model's own answer", "gold", "gold answer"));
    }
    if (rows_store(s, &b[A_AUROC], "precot.auroc_by_layer", "by_layer", p_auroc) ||
        rows_store(s, &b[A_ACC], "precot.accuracy_by_layer", "by_layer", p_acc) ||
        rows_store(s, &b[A_LL], "precot.log_loss_by_layer", "by_layer", p_ll) ||
        rows_store(s, &b[A_SEL], "precot.selectivity_by_layer", "by_layer", p_sel) ||
        rows_store(s, &b[A_SD], "precot.auroc_sd_by_layer", "by_layer", p_sd) ||
        rows_store(s, &b[A_ECE], "precot.ece_by_layer", "by_layer", p_ece))
        goto done;
    if (b[A_WRONG].n > 0 ? rows_store(s, &b[A_WRONG], "precot.wrong_runs_by_layer", "by_layer", p_wrong)
                         : (json_decref(p_wrong), 0))
        goto done;

    if (o->n_steer > 0) {
        if (pl_model_open(&model, model_file) || pl_session_open(&sess, model, 0)) goto done;
        // Per task: the pooled tally, then one per --by value.
        int per_task = 1 + (bv ? 64 : 0);
        tally = calloc((size_t)n_tasks * (size_t)per_task, sizeof *tally);
        if (!tally) { pl_fail("out of memory"); goto done; }
        steer_tally all = {0};
        for (int ti = 0; ti < n_tasks; ti++) {
            if (!have_own[ti]) continue;
            steer_tally *t = tally + (size_t)ti * per_task;
            int layers[PL_PRECOT_MAX_LAYERS], n_layers = o->n_layers;
            if (n_layers > 0) memcpy(layers, o->layers, sizeof(int) * (size_t)n_layers);
            else layers[0] = select_layer(&own[ti]), n_layers = 1;
            if (report) {
                fprintf(report, "\n%s: steering at layer(s)", tasks[ti]);
                for (int i = 0; i < n_layers; i++) fprintf(report, " %d", layers[i]);
                fprintf(report, "%s toward a random other answer (norm = mean |resid| of the layer)\n",
                        o->n_layers ? "" : " (lowest CV log-loss on split 0's training rows)");
            }
            if (steer_task(t, s, sess, tasks[ti], &own[ti], o, layers, n_layers, bv ? &bv[ti] : NULL)) goto done;
            report_steer(report, tasks[ti], &t[0], o);
            if (add_steer_rows(&b[A_FLIP], &b[A_TAX], tasks[ti], &t[0], o)) goto done;
            for (int vi = 0; bv && vi < bv[ti].n; vi++) {
                char cell[96];
                snprintf(cell, sizeof cell, "%s@%s", tasks[ti], bv[ti].v[vi]);
                if (add_steer_rows(&b[A_FLIP], &b[A_TAX], cell, &t[1 + vi], o)) goto done;
            }
            tally_add(&all, &t[0]);
        }
        if (n_tasks > 1) report_steer(report, "all tasks", &all, o);
        if (add_steer_rows(&b[A_FLIP], &b[A_TAX], "all", &all, o)) goto done;
        // Settings, the number of steered items per task (every item is generated at every α in
        // every direction) and drawing hints: one panel per task, "all" last.
        json_t *alphas = json_array(), *n_items = json_object(), *facet_order = json_array(), *titles = json_object(),
               *tax_titles = json_object(), *tax_order = json_array();
        for (int a = 0; a < o->n_alphas; a++) json_array_append_new(alphas, json_real(o->alphas[a]));
        for (int ti = 0; ti <= n_tasks; ti++) {
            if (ti < n_tasks && !have_own[ti]) continue;
            for (int vi = -1; vi < (ti < n_tasks && bv ? bv[ti].n : 0); vi++) {
                char task[96], title[128];
                const steer_tally *t = ti < n_tasks ? tally + (size_t)ti * per_task + 1 + vi : &all;
                snprintf(task, sizeof task, "%s%s%s", ti < n_tasks ? tasks[ti] : "all", vi >= 0 ? "@" : "",
                         vi >= 0 ? bv[ti].v[vi] : "");
                int n = t->n[0][0];
                if (vi >= 0 && n == 0) continue;
                snprintf(title, sizeof title, "%s (n = %d item%s)", ti < n_tasks ? task : "all tasks", n, n == 1 ? "" : "s");
                json_object_set_new(n_items, task, json_integer(n));
                if (vi >= 0) continue;  // the default figure shows the pooled cells; --series 'max@*' the others
                json_array_append_new(facet_order, json_string(task));
                json_object_set_new(titles, task, json_string(title));
                for (int dir = 0; dir < N_DIRS; dir++) {
                    char key[128], t2[200];
                    snprintf(key, sizeof key, "%s/%s", task, dir_name[dir]);
                    json_array_append_new(tax_order, json_string(key));
                    snprintf(t2, sizeof t2, "%s, %s", dir_title[dir], title);
                    json_object_set_new(tax_titles, key, json_string(t2));
                }
            }
        }
        json_t *p_flip = json_pack(
            "{s:i, s:i, s:I, s:s, s:s, s:s?, s:o, s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:f, s:f, s:[s,s,s,s], s:o, s:o, s:[s], "
            "s:{s:s}, s:{s:s, s:s, s:s, s:s}}",
            "n_steer", o->n_steer, "steer_all", o->steer_all, "seed", (json_int_t)o->seed, "layers",
            o->n_layers ? "given" : "cv-log-loss", "layer_selection",
            o->n_layers ? "given" : "lowest CV log-loss of the own-answer probe on split 0's training rows", "by", o->by,
            "alphas", json_deep_copy(alphas), "n_items", json_deep_copy(n_items), "series_format",
            "<task[@value]|all>/<probe|orthogonal|covariance|shuffled>[/to-target]", "title",
            "Answer flip rate: probe direction vs matched controls (α × mean residual norm)", "x_label",
            "steering strength α", "y_label", "answer flip rate (Wilson 95% CI)", "facet", "prefix", "hide_series",
            "*@*", "y_min", 0.0, "y_max", 1.0, "series_order", "probe", "orthogonal", "covariance", "shuffled",
            "facet_order", facet_order, "panel_titles", titles, "baselines", "to-target", "baseline_labels", "to-target",
            "to target", "series_labels", "probe", "probe", "orthogonal", "orthogonal (isotropic)", "covariance",
            "covariance-matched", "shuffled", "shuffled-label probe");
        json_t *p_tax = json_pack(
            "{s:i, s:i, s:I, s:o, s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:[s,s,s,s,s,s,s], s:o, s:o}", "n_steer",
            o->n_steer, "steer_all", o->steer_all, "seed", (json_int_t)o->seed, "alphas", alphas, "n_items", n_items,
            "series_format", "<task[@value]|all>/<probe|orthogonal|covariance|shuffled>/<cot class>", "title",
            "Taxonomy of the steered chains of thought by steering strength", "x_label",
            "steering strength α", "y_label", "steered chains of thought", "facet", "prefix", "default_series", "all/*",
            "facet_depth", 2, "series_order", "sound", "non-entailment", "confabulation", "hallucination", "incomplete",
            "no-answer", "unchecked", "panel_titles", tax_titles, "facet_order", tax_order);
        if (rows_store(s, &b[A_FLIP], "precot.flip_rate", "flip_rate", p_flip) ||
            rows_store(s, &b[A_TAX], "precot.taxonomy", "counts", p_tax))
            goto done;
    }
    if (report) fprintf(report, "\nprecot: done in %.1f s; analyses stored in %s\n", pl_now_sec() - t0, pl_store_path(s));
    rc = 0;
done:
    for (int ti = 0; ti < n_tasks; ti++)
        if (have_own[ti]) pl_probe_sweep_free(&own[ti]);
    for (int k = 0; k < N_ANALYSES; k++) rows_free(&b[k]);
    json_decref(inputs);
    free(tally), free(bv);
    pl_session_free(sess);
    pl_model_free(model);
    return rc;
}
