// Linear probes over the trace store: rows from runs, the layer sweep, saving/loading, applying.
#include "probes/probe_store.h"

#include <ctype.h>
#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "probes/linear/controls.h"
#include "runtime/base/error.h"
#include "runtime/hooks.h"

// ---- positions ---------------------------------------------------------------------------------

int pl_probe_at_parse(pl_probe_at *out, const char *text) {
    *out = (pl_probe_at){PL_AT_LAST_PROMPT, 0};
    if (!text) return pl_fail("--at: missing value");
    if (strcmp(text, "last-prompt") == 0) out->kind = PL_AT_LAST_PROMPT;
    else if (strcmp(text, "cot-start") == 0) out->kind = PL_AT_COT_START;
    else if (strcmp(text, "answer-prefix") == 0 || strcmp(text, "answer") == 0) out->kind = PL_AT_ANSWER;  // "answer": old name
    else if (strcmp(text, "last-cot") == 0) out->kind = PL_AT_LAST_COT;
    else if (strncmp(text, "token:", 6) == 0) {
        char *end;
        long v = strtol(text + 6, &end, 10);
        if (end == text + 6 || *end || v < -100000 || v > 100000)
            return pl_fail("position '%s': N must be an integer in [-100000, 100000]", text);
        out->kind = PL_AT_TOKEN, out->token = (int)v;
    } else {
        return pl_fail("position '%s': expected last-prompt, cot-start, answer-prefix, last-cot or token:N", text);
    }
    return 0;
}

void pl_probe_at_format(char *buf, size_t buf_size, const pl_probe_at *at) {
    switch (at->kind) {
    case PL_AT_LAST_PROMPT: snprintf(buf, buf_size, "last-prompt"); break;
    case PL_AT_COT_START: snprintf(buf, buf_size, "cot-start"); break;
    case PL_AT_ANSWER: snprintf(buf, buf_size, "answer-prefix"); break;
    case PL_AT_LAST_COT: snprintf(buf, buf_size, "last-cot"); break;
    case PL_AT_TOKEN: snprintf(buf, buf_size, "token:%d", at->token); break;
    }
}

// Position of the token ending the last "A:" in the generated part, or -1.
static int answer_prefix_end(const pl_token_row *t, int n, int n_prompt) {
    const char *prefix = PL_ANSWER_PREFIX;
    size_t plen = strlen(prefix);
    // Walk back from the end, matching the prefix's bytes right to left across token pieces.
    for (int end = n - 1; end >= n_prompt; end--) {
        size_t k = plen;
        int ok = 1;
        for (int i = end; i >= n_prompt && k > 0 && ok; i--) {
            size_t len = strlen(t[i].piece);
            if (i == end && len == 0) { ok = 0; break; }
            for (size_t j = len; j > 0 && k > 0; j--) {
                if (t[i].piece[j - 1] != prefix[k - 1]) { ok = 0; break; }
                k--;
            }
        }
        if (ok && k == 0) return end;
    }
    return -1;
}

int pl_probe_at_resolve(int32_t *pos, const pl_probe_at *at, const pl_token_row *tokens, int n_tokens, int n_prompt) {
    int p = -1;
    switch (at->kind) {
    case PL_AT_LAST_PROMPT: p = n_prompt - 1; break;
    case PL_AT_COT_START:
        if (n_tokens <= n_prompt) return pl_fail("cot-start: the run generated no token");
        p = n_prompt;
        break;
    case PL_AT_ANSWER:
        p = answer_prefix_end(tokens, n_tokens, n_prompt);
        if (p < 0) return pl_fail("answer-prefix: no \"%s\" in the generated text", PL_ANSWER_PREFIX);
        break;
    case PL_AT_LAST_COT:
        for (int i = n_prompt; i < n_tokens; i++)
            if (tokens[i].segment == PL_SEG_ANSWER) { p = i - 1; break; }
        if (p < n_prompt) return pl_fail("last-cot: the run has no chain of thought before its answer");
        break;
    case PL_AT_TOKEN: p = at->token < 0 ? n_tokens + at->token : at->token; break;
    }
    if (p < 0 || p >= n_tokens) return pl_fail("position %d is outside the run's %d tokens", p, n_tokens);
    *pos = p;
    return 0;
}

// ---- a run's example ---------------------------------------------------------------------------

int pl_probe_run_example(pl_store *s, int64_t run_id, pl_example *out) {
    memset(out, 0, sizeof *out);
    pl_stored_example e;
    if (pl_store_get_run_example(s, run_id, &e)) return -1;
    out->id = e.ext_id, out->task = e.task, out->prompt = e.prompt, out->cot = e.cot, out->answer = e.answer;
    out->options = e.options, out->n_options = e.n_options, out->difficulty = e.difficulty, out->meta_json = e.meta_json;
    return 0;
}

// ---- rows ----------------------------------------------------------------------------------------

void pl_probe_rows_free(pl_probe_rows *r) {
    if (!r) return;
    free(r->x), free(r->y), free(r->groups), free(r->types), free(r->run_ids), free(r->positions), free(r->is_test);
    free(r->prompt_ids), free(r->prompt_off), free(r->meta), free(r->gold), free(r->correct);
    pl_strings_free(r->class_names, r->n_classes);
    memset(r, 0, sizeof *r);
}

// The label text of a run into buf; 1 found, 0 absent, -1 error.
static int run_label(pl_store *s, const pl_run_info *run, const char *label, char *buf, size_t n) {
    if (strcmp(label, "gold") == 0) {
        int rc = pl_store_get_label(s, run->id, "gold", buf, n);
        if (rc != 0) return rc;
        pl_example e;
        if (pl_probe_run_example(s, run->id, &e)) return 0;
        snprintf(buf, n, "%s", e.answer ? e.answer : "");
        pl_example_free_fields(&e);
        return buf[0] != 0;
    }
    int rc = pl_store_get_label(s, run->id, label, buf, n);
    if (rc == 1 && strcmp(label, "correct") == 0) snprintf(buf, n, "%d", atof(buf) != 0.0);  // "1.0" -> "1"
    return rc == 1 && buf[0] == 0 ? 0 : rc;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int pl_probe_rows_select(pl_probe_rows *out, pl_store *s, const pl_probe_select *sel) {
    memset(out, 0, sizeof *out);
    pl_run_filter f = pl_run_filter_complete();
    f.task = sel->task;
    f.correct = sel->correct;
    pl_run_info *runs = NULL;
    int n_runs = 0;
    char **texts = NULL, **type_keys = NULL, **golds = NULL, **task_names = NULL;
    int n_types = 0, n_task_names = 0;
    int64_t n_ids = 0, cap_ids = 0;
    // One model: probes on rows of two models would mix widths and meanings.
    if (pl_store_resolve_model(s, sel->model_id, &f.model_id)) return -1;
    if (pl_store_list_runs(s, &f, &runs, &n_runs)) return -1;
    if (n_runs == 0) {
        free(runs);
        return pl_fail("%s: no complete runs%s%s", pl_store_path(s), sel->task ? " of task " : "", sel->task ? sel->task : "");
    }
    out->model_id = f.model_id;
    size_t nr = (size_t)n_runs;
    texts = calloc(nr, sizeof(char *));
    type_keys = calloc(nr, sizeof(char *));
    golds = calloc(nr, sizeof(char *));
    task_names = calloc(nr, sizeof(char *));
    out->prompt_off = malloc((nr + 1) * sizeof(int64_t));
    out->meta = malloc(nr * PL_META_FIELDS * sizeof(int32_t));
    out->gold = malloc(nr * sizeof(int32_t));
    out->correct = malloc(nr * sizeof(int8_t));
    out->y = malloc(nr * sizeof(int32_t)), out->groups = malloc(nr * sizeof(int32_t));
    out->types = malloc(nr * sizeof(int32_t)), out->run_ids = malloc(nr * sizeof(int64_t));
    out->positions = malloc(nr * sizeof(int32_t));
    if (!texts || !type_keys || !golds || !task_names || !out->prompt_off || !out->meta || !out->gold || !out->correct ||
        !out->y || !out->groups || !out->types || !out->run_ids || !out->positions) {
        pl_fail("out of memory");
        goto fail;
    }
    int64_t n = 0, n_by = 0;
    char first_skip[256] = "";
    for (int i = 0; i < n_runs; i++) {
        char buf[128];
        int rc;
        if (sel->by_key) {  // only the runs of one value of a key
            char v[128];
            if (strcmp(sel->by_key, "difficulty") == 0) snprintf(v, sizeof v, "%d", runs[i].difficulty), rc = 1;
            else if ((rc = run_label(s, &runs[i], sel->by_key, v, sizeof v)) < 0) goto fail;
            if (rc == 1) n_by++;
            if (rc == 0 || strcmp(v, sel->by_value ? sel->by_value : "") != 0) continue;
        }
        rc = run_label(s, &runs[i], sel->label, buf, sizeof buf);
        if (rc < 0) goto fail;
        if (rc == 0) {
            if (!first_skip[0]) snprintf(first_skip, sizeof first_skip, "run %lld has no label '%s'", (long long)runs[i].id, sel->label);
            out->n_skipped++;
            continue;
        }
        pl_token_row *tok = NULL;
        int nt = 0;
        if (pl_store_get_tokens(s, runs[i].id, &tok, &nt)) goto fail;
        int32_t pos;
        rc = pl_probe_at_resolve(&pos, &sel->at, tok, nt, runs[i].n_prompt);
        if (rc) {
            free(tok);
            if (!first_skip[0]) snprintf(first_skip, sizeof first_skip, "run %lld: %s", (long long)runs[i].id, pl_errmsg());
            out->n_skipped++;
            continue;
        }
        texts[n] = strdup(buf);
        // What the input-only baselines read: the prompt's tokens and the example's metadata.
        pl_example ex = {0};
        int has_ex = pl_probe_run_example(s, runs[i].id, &ex) == 0;
        golds[n] = strdup(has_ex && ex.answer ? ex.answer : "");
        int32_t *m = out->meta + n * PL_META_FIELDS;
        m[PL_META_PROMPT_LENGTH] = runs[i].n_prompt;
        m[PL_META_DIFFICULTY] = runs[i].difficulty;
        m[PL_META_N_OPTIONS] = has_ex ? ex.n_options : 0;
        pl_example_free_fields(&ex);
        int ti = 0;
        while (ti < n_task_names && strcmp(task_names[ti], runs[i].task) != 0) ti++;
        if (ti == n_task_names) task_names[n_task_names++] = strdup(runs[i].task);
        m[PL_META_TASK] = ti;
        out->correct[n] = (int8_t)runs[i].correct;
        out->prompt_off[n] = n_ids;
        int np = runs[i].n_prompt < nt ? runs[i].n_prompt : nt;
        if (n_ids + np > cap_ids) {
            int64_t cap = 2 * (n_ids + np) + 64;
            int32_t *g = realloc(out->prompt_ids, sizeof(int32_t) * (size_t)cap);
            if (!g) { free(tok); pl_fail("out of memory"); goto fail; }
            out->prompt_ids = g, cap_ids = cap;
        }
        for (int t = 0; t < np; t++) out->prompt_ids[n_ids++] = tok[t].id;
        out->prompt_off[n + 1] = n_ids;
        // The question type of the control task: the task and its prompt with every digit masked
        // (the template: operators, list length, option count, variable structure).
        char key[256];
        size_t kl = (size_t)snprintf(key, sizeof key, "%s:", runs[i].task);
        for (int t = 0; t < runs[i].n_prompt && t < nt && kl + 1 < sizeof key; t++)
            for (const char *c = tok[t].piece; *c && kl + 1 < sizeof key; c++) key[kl++] = isdigit((unsigned char)*c) ? '#' : *c;
        key[kl] = 0;
        int t = 0;
        while (t < n_types && strcmp(type_keys[t], key) != 0) t++;
        if (t == n_types) type_keys[n_types++] = strdup(key);
        out->types[n] = t;
        out->groups[n] = (int32_t)(runs[i].example_id > 0 ? runs[i].example_id : -runs[i].id);
        out->run_ids[n] = runs[i].id;
        out->positions[n] = pos;
        free(tok);
        n++;
    }
    if (sel->by_key && n_by == 0) {
        pl_fail("%s: no run%s%s has '%s' (the key of --by: 'difficulty' or a run label)", pl_store_path(s),
                sel->task ? " of task " : "", sel->task ? sel->task : "", sel->by_key);
        goto fail;
    }
    if (n == 0 && sel->by_key) {
        pl_fail("%s: no run has %s = %s and label '%s'", pl_store_path(s), sel->by_key, sel->by_value ? sel->by_value : "",
                sel->label);
        goto fail;
    }
    if (n == 0) {
        pl_fail("%s: no run has label '%s' at %s (%s)", pl_store_path(s), sel->label,
                sel->at.kind == PL_AT_ANSWER ? "answer-prefix" : "the chosen position", first_skip);
        goto fail;
    }
    // Classes: the sorted distinct label texts.
    char **sorted = malloc(sizeof(char *) * (size_t)n);
    if (!sorted) { pl_fail("out of memory"); goto fail; }
    memcpy(sorted, texts, sizeof(char *) * (size_t)n);
    qsort(sorted, (size_t)n, sizeof(char *), cmp_str);
    out->class_names = malloc(sizeof(char *) * (size_t)n);
    for (int64_t i = 0; out->class_names && i < n; i++)
        if (i == 0 || strcmp(sorted[i], sorted[i - 1]) != 0) out->class_names[out->n_classes++] = strdup(sorted[i]);
    free(sorted);
    if (!out->class_names) { pl_fail("out of memory"); goto fail; }
    for (int64_t i = 0; i < n; i++) {
        char **hit = bsearch(&texts[i], out->class_names, (size_t)out->n_classes, sizeof(char *), cmp_str);
        out->y[i] = (int32_t)(hit - out->class_names);
        hit = golds[i] ? bsearch(&golds[i], out->class_names, (size_t)out->n_classes, sizeof(char *), cmp_str) : NULL;
        out->gold[i] = hit ? (int32_t)(hit - out->class_names) : -1;
    }
    out->n = n;
    for (int64_t i = 0; i < n; i++) free(texts[i]), free(golds[i]);
    for (int t = 0; t < n_types; t++) free(type_keys[t]);
    for (int t = 0; t < n_task_names; t++) free(task_names[t]);
    free(texts), free(type_keys), free(golds), free(task_names), free(runs);
    return 0;
fail:
    for (int i = 0; texts && i < n_runs; i++) free(texts[i]);
    for (int i = 0; golds && i < n_runs; i++) free(golds[i]);
    for (int t = 0; t < n_types; t++) free(type_keys[t]);
    for (int t = 0; t < n_task_names; t++) free(task_names[t]);
    free(texts), free(type_keys), free(golds), free(task_names), free(runs);
    pl_probe_rows_free(out);
    return -1;
}

int pl_probe_rows_read(pl_probe_rows *r, pl_store *s, const char *hook) {
    int d;
    if (pl_store_hook_row_size(s, hook, r->model_id, &d)) return -1;
    float *x = malloc(sizeof(float) * (size_t)r->n * (size_t)d);
    if (!x) return pl_fail("out of memory for %lld × %d activations", (long long)r->n, d);
    for (int64_t i = 0; i < r->n; i++) {
        float *row = x + (size_t)i * (size_t)d;
        if (pl_store_read_acts(s, r->run_ids[i], hook, &r->positions[i], 1, d, row)) {
            free(x);
            return -1;
        }
        for (int j = 0; j < d; j++)
            if (!isfinite(row[j])) {
                const char *what = isnan(row[j]) ? "NaN" : "inf";
                free(x);
                return pl_fail("%s: %s of run %lld at position %d holds %s (feature %d); refusing to fit on it",
                               pl_store_path(s), hook, (long long)r->run_ids[i], r->positions[i], what, j);
            }
    }
    free(r->x);
    r->x = x, r->d = d;
    snprintf(r->hook, sizeof r->hook, "%s", hook);
    return 0;
}

// ---- saving and loading -------------------------------------------------------------------------

static const char *kind_name(pl_probe_kind k) {
    return k == PL_PROBE_BINARY ? "binary" : k == PL_PROBE_MULTINOMIAL ? "multinomial" : "ridge";
}

static json_t *json_num(double v) { return isfinite(v) ? json_real(v) : json_null(); }
static double num_json(json_t *v) { return json_is_number(v) ? json_number_value(v) : NAN; }

static json_t *metrics_json(const pl_probe_metrics *m) {
    json_t *o = json_object();
    json_object_set_new(o, "n", json_integer(m->n));
    json_object_set_new(o, "n_groups", json_integer(m->n_groups));
#define PUT(f) json_object_set_new(o, #f, json_num(m->f))
    PUT(accuracy), PUT(accuracy_lo), PUT(accuracy_hi), PUT(auroc), PUT(auroc_lo), PUT(auroc_hi);
    PUT(log_loss), PUT(log_loss_lo), PUT(log_loss_hi), PUT(majority_accuracy), PUT(control_accuracy), PUT(selectivity);
    PUT(accuracy_sd), PUT(auroc_sd), PUT(log_loss_sd), PUT(ece), PUT(shuffled_accuracy), PUT(shuffled_auroc);
    PUT(input_accuracy), PUT(input_auroc), PUT(input_auroc_sd), PUT(wrong_own), PUT(wrong_gold);
#undef PUT
    json_object_set_new(o, "n_splits", json_integer(m->n_splits));
    json_object_set_new(o, "n_wrong", json_integer(m->n_wrong));
    if (m->input_kind >= 0) json_object_set_new(o, "input_kind", json_string(pl_input_kind_name(m->input_kind)));
    return o;
}

static void metrics_from_json(pl_probe_metrics *m, json_t *o) {
    *m = pl_probe_metrics_empty();
    if (!json_is_object(o)) return;
    m->n = json_integer_value(json_object_get(o, "n"));
    m->n_groups = json_integer_value(json_object_get(o, "n_groups"));
#define GET(f) m->f = num_json(json_object_get(o, #f))
    GET(accuracy), GET(accuracy_lo), GET(accuracy_hi), GET(auroc), GET(auroc_lo), GET(auroc_hi);
    GET(log_loss), GET(log_loss_lo), GET(log_loss_hi), GET(majority_accuracy), GET(control_accuracy), GET(selectivity);
    GET(accuracy_sd), GET(auroc_sd), GET(log_loss_sd), GET(ece), GET(shuffled_accuracy), GET(shuffled_auroc);
    GET(input_accuracy), GET(input_auroc), GET(input_auroc_sd), GET(wrong_own), GET(wrong_gold);
#undef GET
    m->n_splits = (int)json_integer_value(json_object_get(o, "n_splits"));
    m->n_wrong = json_integer_value(json_object_get(o, "n_wrong"));
    const char *kind = json_string_value(json_object_get(o, "input_kind"));
    for (int k = 0; kind && k < PL_INPUT_KINDS; k++)
        if (strcmp(kind, pl_input_kind_name(k)) == 0) m->input_kind = k;
}

void pl_probe_record_free(pl_probe_record *r) {
    if (!r) return;
    pl_strings_free(r->class_names, r->n_classes);
    r->class_names = NULL, r->n_classes = 0;
}

int pl_probe_save(pl_store *s, const pl_probe *p, const pl_probe_record *rec, int64_t *id) {
    char model_name[96] = "", sha[65] = "";
    if (rec->model_id > 0) {
        pl_model_info m;
        if (pl_store_get_model(s, rec->model_id, &m)) return -1;
        snprintf(model_name, sizeof model_name, "%.95s", m.name);  // the record's model_name[96]
        snprintf(sha, sizeof sha, "%s", m.sha256);
    }
    json_t *o = json_object(), *classes = json_array(), *values = json_array();
    for (int c = 0; c < p->n_classes; c++) {
        // Stored names follow the probe's class order: class_names[i] names probe class index i.
        int v = p->classes[c];
        json_array_append_new(classes, json_string(rec->class_names && v >= 0 && v < rec->n_classes ? rec->class_names[v] : ""));
        json_array_append_new(values, json_integer(p->classes[c]));
    }
    json_object_set_new(o, "kind", json_string(kind_name(p->kind)));
    json_object_set_new(o, "hook", json_string(rec->hook));
    json_object_set_new(o, "at", json_string(rec->at));
    json_object_set_new(o, "label", json_string(rec->label));
    json_object_set_new(o, "task", json_string(rec->task));
    json_object_set_new(o, "model_id", json_integer(rec->model_id));
    json_object_set_new(o, "model_name", json_string(model_name));
    json_object_set_new(o, "model_sha256", json_string(sha));
    json_object_set_new(o, "d", json_integer(p->d));
    json_object_set_new(o, "n_outputs", json_integer(p->n_outputs));
    json_object_set_new(o, "classes", classes);
    json_object_set_new(o, "class_values", values);
    json_object_set_new(o, "lambda", json_real(p->lambda));
    json_object_set_new(o, "balanced", json_integer(p->balanced));
    json_object_set_new(o, "n_train", json_integer(p->n_train));
    json_object_set_new(o, "iterations", json_integer(p->iterations));
    json_object_set_new(o, "converged", json_boolean(p->converged));
    json_object_set_new(o, "metrics", metrics_json(&p->metrics));
    json_object_set_new(o, "layout", json_string("weights[n_outputs*d], bias[n_outputs], mean[d], std[d] (standardized features)"));
    char *params = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    size_t d = (size_t)p->d, k = (size_t)p->n_outputs, nw = k * d + k + 2 * d;
    float *w = malloc(sizeof(float) * nw);
    if (!params || !w) {
        free(params), free(w);
        return pl_fail("out of memory saving probe %s", rec->name);
    }
    memcpy(w, p->weights, sizeof(float) * k * d);
    memcpy(w + k * d, p->bias, sizeof(float) * k);
    memcpy(w + k * d + k, p->mean, sizeof(float) * d);
    memcpy(w + k * d + k + d, p->std, sizeof(float) * d);
    int rc = pl_store_put_probe(s, rec->name, kind_name(p->kind), rec->hook, rec->at, params, w, (int)nw, id);
    free(params), free(w);
    return rc;
}

// Fill a record and (if p) a probe from one stored probe row.
static int probe_from_row(const pl_stored_probe *row, pl_probe **p, pl_probe_record *rec, const char *path) {
    memset(rec, 0, sizeof *rec);
    rec->id = row->id;
    const char *v;
    snprintf(rec->name, sizeof rec->name, "%s", row->name);
    snprintf(rec->kind, sizeof rec->kind, "%s", row->kind);
    snprintf(rec->hook, sizeof rec->hook, "%s", row->hook);
    snprintf(rec->at, sizeof rec->at, "%s", row->positions);
    rec->created = row->created;
    json_t *o = json_loads(row->params_json, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return pl_fail("%s: probe %lld: params are not a JSON object", path, (long long)rec->id);
    }
    v = json_string_value(json_object_get(o, "label")), snprintf(rec->label, sizeof rec->label, "%s", v ? v : "");
    v = json_string_value(json_object_get(o, "task")), snprintf(rec->task, sizeof rec->task, "%s", v ? v : "");
    v = json_string_value(json_object_get(o, "model_name")), snprintf(rec->model_name, sizeof rec->model_name, "%s", v ? v : "");
    v = json_string_value(json_object_get(o, "model_sha256")), snprintf(rec->model_sha256, sizeof rec->model_sha256, "%s", v ? v : "");
    rec->model_id = json_integer_value(json_object_get(o, "model_id"));
    rec->d = (int)json_integer_value(json_object_get(o, "d"));
    rec->lambda = num_json(json_object_get(o, "lambda"));
    metrics_from_json(&rec->metrics, json_object_get(o, "metrics"));
    json_t *classes = json_object_get(o, "classes"), *values = json_object_get(o, "class_values");
    int k = (int)json_array_size(classes);
    int n_outputs = (int)json_integer_value(json_object_get(o, "n_outputs"));
    rec->class_names = calloc((size_t)(k > 0 ? k : 1), sizeof(char *));
    for (int c = 0; rec->class_names && c < k; c++) {
        v = json_string_value(json_array_get(classes, (size_t)c));
        rec->class_names[c] = strdup(v ? v : "");
        rec->n_classes = c + 1;
    }
    int rc = 0;
    if (p) {
        *p = NULL;
        size_t d = (size_t)rec->d, no = (size_t)n_outputs, nw = no * d + no + 2 * d;
        int bytes = row->n_weights * (int)sizeof(float);
        const float *blob = row->weights;
        pl_probe *q = calloc(1, sizeof *q);
        if (rec->d <= 0 || n_outputs <= 0 || (size_t)bytes != nw * sizeof(float) || !blob || (size_t)json_array_size(values) != (size_t)k) {
            free(q);
            rc = pl_fail("%s: probe %lld ('%s'): weights blob of %d bytes does not match d=%d, outputs=%d", path,
                         (long long)rec->id, rec->name, bytes, rec->d, n_outputs);
        } else if (!q) {
            rc = pl_fail("out of memory");
        } else {
            const char *kn = rec->kind;
            q->kind = strcmp(kn, "binary") == 0 ? PL_PROBE_BINARY : strcmp(kn, "ridge") == 0 ? PL_PROBE_RIDGE : PL_PROBE_MULTINOMIAL;
            q->d = rec->d, q->n_classes = k, q->n_outputs = n_outputs, q->lambda = rec->lambda;
            q->classes = malloc(sizeof(int32_t) * (size_t)(k > 0 ? k : 1));
            q->weights = malloc(sizeof(float) * no * d), q->bias = malloc(sizeof(float) * no);
            q->mean = malloc(sizeof(float) * d), q->std = malloc(sizeof(float) * d);
            if (!q->classes || !q->weights || !q->bias || !q->mean || !q->std) {
                pl_probe_free(q);
                rc = pl_fail("out of memory");
            } else {
                for (int c = 0; c < k; c++) q->classes[c] = (int32_t)json_integer_value(json_array_get(values, (size_t)c));
                memcpy(q->weights, blob, sizeof(float) * no * d);
                memcpy(q->bias, blob + no * d, sizeof(float) * no);
                memcpy(q->mean, blob + no * d + no, sizeof(float) * d);
                memcpy(q->std, blob + no * d + no + d, sizeof(float) * d);
                q->converged = json_is_true(json_object_get(o, "converged"));
                q->n_train = json_integer_value(json_object_get(o, "n_train"));
                q->metrics = rec->metrics;
                *p = q;
            }
        }
    }
    json_decref(o);
    if (rc) pl_probe_record_free(rec);
    return rc;
}

// Load the stored probe `id` into a record (and a probe if p); 0 if it does not exist.
static int load_id(pl_store *s, int64_t id, pl_probe **p, pl_probe_record *rec) {
    pl_stored_probe row;
    int found = pl_store_get_probe(s, id, &row);
    if (found != 1) return found;
    int rc = probe_from_row(&row, p, rec, pl_store_path(s));
    pl_stored_probe_free(&row);
    return rc ? -1 : 1;
}

int pl_probe_load(pl_store *s, const char *ref, pl_probe **p, pl_probe_record *rec) {
    char *end;
    long long id = strtoll(ref, &end, 10);
    int by_id = *ref && !*end;
    int64_t found_id = id;
    int found = by_id ? 1 : pl_store_find_probe(s, ref, &found_id);
    if (found == 1) found = load_id(s, found_id, p, rec);
    if (found < 0) return -1;
    if (found == 0)
        return pl_fail("%s: no probe %s '%s' (probelab probe list %s)", pl_store_path(s), by_id ? "with id" : "named", ref,
                       pl_store_path(s));
    return 0;
}

int pl_probe_list_saved(pl_store *s, pl_probe_record **recs, int *n) {
    *recs = NULL, *n = 0;
    pl_probe_info *info;
    int n_info, rc = 0;
    if (pl_store_list_probes(s, &info, &n_info)) return -1;
    if (n_info > 0 && !(*recs = calloc((size_t)n_info, sizeof **recs))) rc = pl_fail("out of memory");
    for (int i = 0; !rc && i < n_info; i++) {
        int found = load_id(s, info[i].id, NULL, &(*recs)[*n]);
        if (found < 0) rc = -1;
        else if (found == 1) (*n)++;
    }
    free(info);
    if (rc) {
        for (int i = 0; i < *n; i++) pl_probe_record_free(&(*recs)[i]);
        free(*recs), *recs = NULL, *n = 0;
    }
    return rc;
}

// ---- the sweep -----------------------------------------------------------------------------------

pl_probe_train_options pl_probe_train_defaults(void) {
    pl_probe_train_options o = {0};
    o.hooks = "blocks.*.hook_resid_post";
    o.sel.label = "answer";
    o.sel.at.kind = PL_AT_LAST_PROMPT;
    o.sel.correct = -1;
    o.eval = pl_probe_eval_defaults();
    o.embed_baseline = 1;
    o.control_task = 1;
    o.save = 1;
    o.n_splits = 5;
    return o;
}

static const char *const input_names[PL_INPUT_KINDS] = {"bag", "positional", "embed-mean", "meta"};

const char *pl_input_kind_name(int kind) { return kind >= 0 && kind < PL_INPUT_KINDS ? input_names[kind] : "none"; }

int pl_probe_controls_parse(int *mask, const char *text) {
    *mask = 0;
    if (!text) return pl_fail("--controls: missing value");
    for (const char *p = text; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 5 && strncmp(p, "input", 5) == 0) *mask |= PL_CONTROL_INPUT;
        else if (len == 8 && strncmp(p, "shuffled", 8) == 0) *mask |= PL_CONTROL_SHUFFLED;
        else if (!(len == 4 && strncmp(p, "none", 4) == 0))
            return pl_fail("--controls '%s': expected a comma-separated list of input, shuffled (or none)", text);
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

void pl_probe_sweep_free(pl_probe_sweep *sw) {
    if (!sw) return;
    for (int i = 0; i < sw->n_layers; i++) pl_probe_free(sw->layers[i].probe), pl_probe_free(sw->layers[i].shuffled);
    free(sw->layers);
    if (sw->has_embed) pl_probe_free(sw->embed.probe), pl_probe_free(sw->embed.shuffled);
    free(sw->is_test);
    pl_probe_rows_free(&sw->rows);
    memset(sw, 0, sizeof *sw);
}

static int layer_cmp(const void *a, const void *b) {
    const pl_probe_layer *x = a, *y = b;
    return x->layer != y->layer ? (x->layer > y->layer) - (x->layer < y->layer) : strcmp(x->hook, y->hook);
}

#define MAX_SPLITS 64

// One split's metrics averaged into one: means, the mean of the bootstrap bounds, the sd across
// splits; the wrong-run rates weighted by their row counts.
static pl_probe_metrics aggregate_splits(const pl_probe_metrics *m, int n) {
    pl_probe_metrics a = m[0];
    double v[MAX_SPLITS] = {0}, sd;
#define AGG(f, sdf)                                \
    for (int i = 0; i < n; i++) v[i] = m[i].f;     \
    pl_mean_sd(&a.f, &sd, v, n);                   \
    sdf = sd;
    double unused;
    AGG(accuracy, a.accuracy_sd) AGG(auroc, a.auroc_sd) AGG(log_loss, a.log_loss_sd)
    AGG(accuracy_lo, unused) AGG(accuracy_hi, unused) AGG(auroc_lo, unused) AGG(auroc_hi, unused)
    AGG(log_loss_lo, unused) AGG(log_loss_hi, unused) AGG(majority_accuracy, unused) AGG(control_accuracy, unused)
    AGG(selectivity, unused) AGG(ece, unused) AGG(shuffled_accuracy, unused) AGG(shuffled_auroc, unused)
    (void)unused;
#undef AGG
    double own = 0, gold = 0;
    a.n_wrong = 0;
    for (int i = 0; i < n; i++)
        if (m[i].n_wrong > 0) a.n_wrong += m[i].n_wrong, own += m[i].wrong_own * m[i].n_wrong, gold += m[i].wrong_gold * m[i].n_wrong;
    a.wrong_own = a.n_wrong ? own / a.n_wrong : NAN, a.wrong_gold = a.n_wrong ? gold / a.n_wrong : NAN;
    a.n_splits = n;
    return a;
}

// Held-out calibration (ECE, 10 bins) and, on the held-out runs the model got wrong, how often the
// top class is the row's own label and how often the gold answer.
static int split_extras(pl_probe_metrics *m, const pl_probe *p, const pl_probe_rows *r, const float *x, int d,
                        const uint8_t *is_test) {
    int64_t n_test = 0;
    for (int64_t i = 0; i < r->n; i++) n_test += is_test[i] != 0;
    int k = p->n_classes, rc = -1;
    float *xt = malloc(sizeof(float) * (size_t)(n_test + 1) * d), *probs = malloc(sizeof(float) * (size_t)(n_test + 1) * k);
    int32_t *yt = malloc(sizeof(int32_t) * (size_t)(n_test + 1)), *row = malloc(sizeof(int32_t) * (size_t)(n_test + 1));
    if (!xt || !probs || !yt || !row) { pl_fail("out of memory"); goto done; }
    int64_t t = 0;
    for (int64_t i = 0; i < r->n; i++)
        if (is_test[i]) memcpy(xt + t * d, x + (size_t)i * d, sizeof(float) * (size_t)d), yt[t] = r->y[i], row[t++] = (int32_t)i;
    if (pl_probe_predict_proba(probs, p, xt, n_test)) goto done;
    pl_probe_class_index(yt, p, yt, n_test);  // held-out labels are always training classes here
    double conf[10], acc[10];
    int64_t cnt[10];
    m->ece = NAN;
    if (pl_reliability_bins(conf, acc, cnt, &m->ece, probs, yt, n_test, k, 10)) m->ece = NAN;
    int64_t wrong = 0, own = 0, gold = 0;
    for (int64_t j = 0; j < n_test; j++) {
        int64_t i = row[j];
        if (r->correct[i] != 0) continue;
        const float *pr = probs + (size_t)j * k;
        int top = 0;
        for (int c = 1; c < k; c++)
            if (pr[c] > pr[top]) top = c;
        wrong++, own += p->classes[top] == r->y[i], gold += p->classes[top] == r->gold[i];
    }
    m->n_wrong = wrong;
    m->wrong_own = wrong ? (double)own / wrong : NAN, m->wrong_gold = wrong ? (double)gold / wrong : NAN;
    rc = 0;
done:
    free(xt), free(probs), free(yt), free(row);
    return rc;
}

// Fit and evaluate one design matrix (r->x of one hook, or an input baseline) on every split;
// *probe (may be NULL: freed) gets split 0's probe carrying the aggregated metrics, *cv0 its grid.
static int fit_splits(pl_probe **probe, pl_cv_result *cv0, pl_probe_metrics *agg, const pl_probe_rows *r,
                      const float *x, int d, const uint8_t *is_test, int n_splits, const pl_probe_train_options *o,
                      int with_types, int controls) {
    pl_probe_metrics ms[MAX_SPLITS] = {{0}};
    pl_probe *keep = NULL;
    int32_t *ys = controls & PL_CONTROL_SHUFFLED ? malloc(sizeof(int32_t) * (size_t)r->n) : NULL;
    if ((controls & PL_CONTROL_SHUFFLED) && !ys) return pl_fail("out of memory");
    for (int sp = 0; sp < n_splits; sp++) {
        const uint8_t *test = is_test + (size_t)sp * r->n;
        pl_probe_eval_options eo = o->eval;
        eo.seed = o->eval.seed + (uint64_t)sp;
        pl_probe *p;
        pl_cv_result cv;
        if (pl_probe_train_eval(&p, &cv, x, r->y, r->groups, with_types ? r->types : NULL, test, r->n, d, &eo)) goto fail;
        ms[sp] = p->metrics;
        if (split_extras(&ms[sp], p, r, x, d, test)) { pl_probe_free(p); goto fail; }
        if (ys) {  // the same probe (its lambda) on labels shuffled across examples, scored on theirs
            pl_probe_options po = o->eval.probe;
            po.lambda = p->lambda;
            pl_probe_metrics sm;
            if (pl_shuffle_labels(ys, r->y, r->groups, r->n, eo.seed) ||
                pl_probe_fixed_eval(&sm, x, ys, test, r->n, d, &po)) {
                pl_probe_free(p);
                goto fail;
            }
            ms[sp].shuffled_accuracy = sm.accuracy, ms[sp].shuffled_auroc = sm.auroc;
        }
        if (sp == 0) keep = p, *cv0 = cv;
        else pl_probe_free(p);
    }
    *agg = aggregate_splits(ms, n_splits);
    keep->metrics = *agg;
    free(ys);
    if (probe) *probe = keep;
    else pl_probe_free(keep);
    return 0;
fail:
    free(ys);
    pl_probe_free(keep);
    return -1;
}

// Fit and evaluate one hook on the rows over every split; fills L (probe, shuffled, cv, mean_norm)
// and saves it if asked. input: the sweep's strongest input baseline (NULL: none).
static int fit_one(pl_probe_layer *L, pl_store *s, pl_probe_rows *r, const pl_probe_train_options *o,
                   const uint8_t *is_test, int n_splits, const pl_input_baseline *inputs, int best_input) {
    if (pl_probe_rows_read(r, s, L->hook)) return -1;
    double norm = 0;
    for (int64_t i = 0; i < r->n; i++) {
        double q = 0;
        for (int j = 0; j < r->d; j++) q += (double)r->x[(size_t)i * r->d + j] * r->x[(size_t)i * r->d + j];
        norm += sqrt(q);
    }
    L->mean_norm = norm / (double)r->n;
    pl_probe_metrics agg;
    if (fit_splits(&L->probe, &L->cv, &agg, r, r->x, r->d, is_test, n_splits, o, o->control_task, o->controls)) {
        char why[512];
        snprintf(why, sizeof why, "%s", pl_errmsg());
        return pl_fail("%s: probe on %s: %s", pl_store_path(s), L->hook, why);
    }
    if (best_input >= 0) {
        const pl_probe_metrics *im = &inputs[best_input].metrics;
        L->probe->metrics.input_kind = best_input;
        L->probe->metrics.input_accuracy = im->accuracy, L->probe->metrics.input_auroc = im->auroc;
        L->probe->metrics.input_auroc_sd = im->auroc_sd;
    }
    if (o->controls & PL_CONTROL_SHUFFLED) {
        // The steering control: every row's shuffled label (all classes present), the probe's lambda.
        int32_t *ys = malloc(sizeof(int32_t) * (size_t)r->n);
        pl_probe_options po = o->eval.probe;
        po.lambda = L->probe->lambda;
        int rc = !ys || pl_shuffle_labels(ys, r->y, r->groups, r->n, o->eval.seed) ||
                 pl_probe_fit(&L->shuffled, r->x, ys, r->n, r->d, &po);
        free(ys);
        if (rc) return pl_fail("%s: shuffled-label probe on %s: %s", pl_store_path(s), L->hook, ys ? pl_errmsg() : "out of memory");
    }
    if (!o->save) return 0;
    pl_probe_record rec = {0};
    char at[32];
    pl_probe_at_format(at, sizeof at, &o->sel.at);
    snprintf(rec.name, sizeof rec.name, "%s%s@%s/%s", o->name_prefix ? o->name_prefix : "", o->sel.label, at, L->hook);
    snprintf(rec.hook, sizeof rec.hook, "%s", L->hook);
    snprintf(rec.at, sizeof rec.at, "%s", at);
    snprintf(rec.label, sizeof rec.label, "%s", o->sel.label);
    snprintf(rec.task, sizeof rec.task, "%s", o->sel.task ? o->sel.task : "");
    rec.model_id = r->model_id;
    rec.class_names = r->class_names, rec.n_classes = r->n_classes;
    return pl_probe_save(s, L->probe, &rec, &L->probe_id);
}

// Mean of the prompt's hook_embed rows per row into *x [n × *d]; *x NULL (not an error) when some
// run lacks hook_embed at a prompt position (a store traced with --positions last-prompt).
static int embed_mean_rows(float **x, int *d, pl_store *s, const pl_probe_rows *r) {
    *x = NULL, *d = 0;
    int dd;
    if (pl_store_hook_row_size(s, "hook_embed", r->model_id, &dd)) return 0;
    float *m = calloc((size_t)r->n * (size_t)dd, sizeof(float)), *buf = NULL;
    int32_t *pos = NULL;
    if (!m) return pl_fail("out of memory");
    for (int64_t i = 0; i < r->n; i++) {
        int np = (int)(r->prompt_off[i + 1] - r->prompt_off[i]);
        int32_t *ranges = NULL;
        int n_ranges = 0;
        if (pl_store_recorded_positions(s, r->run_ids[i], "hook_embed", &ranges, &n_ranges)) goto none;
        int covered = 0;
        for (int k = 0; k < n_ranges; k++)
            if (ranges[2 * k] <= 0 && ranges[2 * k + 1] >= np) covered = 1;
        free(ranges);
        if (!covered || np < 1) goto none;
        float *b = realloc(buf, sizeof(float) * (size_t)np * dd);
        int32_t *p = realloc(pos, sizeof(int32_t) * (size_t)np);
        if (!b || !p) { free(b ? b : buf), free(p ? p : pos), free(m); return pl_fail("out of memory"); }
        buf = b, pos = p;
        for (int t = 0; t < np; t++) pos[t] = t;
        if (pl_store_read_acts(s, r->run_ids[i], "hook_embed", pos, np, dd, buf)) goto none;
        for (int t = 0; t < np; t++)
            for (int j = 0; j < dd; j++) m[(size_t)i * dd + j] += buf[(size_t)t * dd + j] / (float)np;
    }
    free(buf), free(pos);
    *x = m, *d = dd;
    return 0;
none:
    free(buf), free(pos), free(m);
    return 0;
}

// The input-only baselines of the rows over every split (PL_CONTROL_INPUT).
static int fit_inputs(pl_probe_sweep *out, pl_store *s, const pl_probe_train_options *o) {
    const pl_probe_rows *r = &out->rows;
    out->best_input = -1;
    for (int k = 0; k < PL_INPUT_KINDS; k++) {
        float *x = NULL;
        int d = 0, rc = 0;
        pl_input_baseline *b = &out->inputs[k];
        b->metrics = pl_probe_metrics_empty();
        if (k == PL_INPUT_BAG) rc = pl_input_bag_of_tokens(&x, &d, r->prompt_ids, r->prompt_off, r->n);
        else if (k == PL_INPUT_POSITIONAL) rc = pl_input_positional(&x, &d, r->prompt_ids, r->prompt_off, r->n);
        else if (k == PL_INPUT_EMBED_MEAN) rc = embed_mean_rows(&x, &d, s, r);
        else rc = pl_input_categorical(&x, &d, r->meta, r->n, PL_META_FIELDS);
        if (rc) return -1;
        if (x && d > 0) {
            b->available = 1, b->d = d;
            if (fit_splits(NULL, &(pl_cv_result){0}, &b->metrics, r, x, d, out->is_test, out->n_splits, o, 0, 0)) {
                char why[512];
                snprintf(why, sizeof why, "%s", pl_errmsg());
                free(x);
                return pl_fail("%s: input baseline '%s': %s", pl_store_path(s), input_names[k], why);
            }
            if (out->best_input < 0 || b->metrics.auroc > out->inputs[out->best_input].metrics.auroc) out->best_input = k;
        }
        free(x);
    }
    return 0;
}

// A held-out split by example; a held-out class with no training row cannot be scored: its
// examples move to training (rare answers of small stores). A held-out part with a single class
// has no AUROC: the split is redrawn (seeded) up to 20 times.
static int make_split(uint8_t *is_test, const pl_probe_rows *r, uint64_t seed) {
    int64_t *train_count = calloc((size_t)r->n_classes, sizeof(int64_t));
    if (!train_count) return pl_fail("out of memory");
    for (int attempt = 0; attempt < 20; attempt++) {
        memset(train_count, 0, sizeof(int64_t) * (size_t)r->n_classes);
        if (pl_group_split(is_test, r->groups, r->n, 0.2, seed + 7777ULL * (uint64_t)attempt)) { free(train_count); return -1; }
        for (int64_t i = 0; i < r->n; i++)
            if (!is_test[i]) train_count[r->y[i]]++;
        for (int64_t i = 0; i < r->n; i++)
            if (is_test[i] && train_count[r->y[i]] == 0)
                for (int64_t j = 0; j < r->n; j++)
                    if (r->groups[j] == r->groups[i] && is_test[j]) is_test[j] = 0, train_count[r->y[j]]++;
        int32_t first = -1, two = 0;
        for (int64_t i = 0; i < r->n && !two; i++)
            if (is_test[i]) {
                if (first < 0) first = r->y[i];
                else two = r->y[i] != first;
            }
        if (two) break;
    }
    free(train_count);
    return 0;
}

int pl_probe_train_sweep(pl_probe_sweep *out, pl_store *s, const pl_probe_train_options *o) {
    memset(out, 0, sizeof *out);
    out->best_input = -1;
    char **hooks = NULL;
    int n_hooks = 0;
    int n_splits = o->n_splits > 0 ? o->n_splits : 1;
    if (n_splits > MAX_SPLITS) return pl_fail("--splits %d: at most %d", n_splits, MAX_SPLITS);
    if (pl_store_list_hooks(s, &hooks, &n_hooks)) return -1;
    out->layers = calloc((size_t)(n_hooks > 0 ? n_hooks : 1), sizeof *out->layers);
    if (!out->layers) goto oom;
    int has_embed = 0;
    for (int i = 0; i < n_hooks; i++) {
        if (strcmp(hooks[i], "hook_embed") == 0) has_embed = 1;
        if (fnmatch(o->hooks, hooks[i], 0) != 0) continue;
        pl_probe_layer *L = &out->layers[out->n_layers++];
        snprintf(L->hook, sizeof L->hook, "%s", hooks[i]);
        pl_hook_kind kind;
        if (pl_hook_parse(hooks[i], &kind, &L->layer)) L->layer = -1;
    }
    if (out->n_layers == 0) {
        char list[512] = "";
        for (int i = 0; i < n_hooks && strlen(list) < 400; i++)
            strcat(list, i ? ", " : ""), strncat(list, hooks[i], sizeof list - strlen(list) - 1);
        pl_fail("%s: no recorded hook matches '%s' (recorded: %s)", pl_store_path(s), o->hooks, n_hooks ? list : "none");
        goto fail;
    }
    qsort(out->layers, (size_t)out->n_layers, sizeof *out->layers, layer_cmp);
    if (pl_probe_rows_select(&out->rows, s, &o->sel)) goto fail;
    pl_probe_rows *r = &out->rows;
    if (r->n_classes < 2) {
        char which[160] = "";
        if (o->sel.task || o->sel.by_key)
            snprintf(which, sizeof which, " (after filtering:%s%s%s%s%s%s)", o->sel.task ? " task " : "",
                     o->sel.task ? o->sel.task : "", o->sel.by_key ? " " : "", o->sel.by_key ? o->sel.by_key : "",
                     o->sel.by_key ? " = " : "", o->sel.by_key && o->sel.by_value ? o->sel.by_value : "");
        pl_fail("%s: label '%s' has a single class ('%s') over %lld runs%s; a probe needs at least two", pl_store_path(s),
                o->sel.label, r->class_names[0], (long long)r->n, which);
        goto fail;
    }
    int n_groups = 0;  // distinct examples
    {
        int32_t *g = NULL;
        n_groups = pl_distinct_labels(&g, r->groups, r->n);
        free(g);
        if (n_groups < 0) goto fail;
    }
    int folds = o->eval.cv.n_folds > 0 ? o->eval.cv.n_folds : 5;
    // The held-out split takes ~20% of the examples; CV runs on the rest.
    if (n_groups < folds + 2 || (int)(n_groups * 0.8) < folds) {
        pl_fail("%s: %d examples with label '%s' are too few for %d folds plus a held-out split (need at least %d)",
                pl_store_path(s), n_groups, o->sel.label, folds, (int)ceil((folds + 1) / 0.8));
        goto fail;
    }
    // n_splits held-out splits by example, the same for every layer and baseline so that they
    // compare on the same rows; split 0 uses the seed itself (the single split of earlier versions).
    out->n_splits = n_splits;
    out->is_test = malloc((size_t)r->n * (size_t)n_splits);
    r->is_test = malloc((size_t)r->n);
    if (!out->is_test || !r->is_test) goto oom;
    for (int sp = 0; sp < n_splits; sp++)
        if (make_split(out->is_test + (size_t)sp * r->n, r, o->eval.seed + 1000003ULL * (uint64_t)sp)) goto fail;
    memcpy(r->is_test, out->is_test, (size_t)r->n);
    if ((o->controls & PL_CONTROL_INPUT) && fit_inputs(out, s, o)) goto fail;
    for (int i = 0; i < out->n_layers; i++)
        if (fit_one(&out->layers[i], s, r, o, out->is_test, n_splits, out->inputs, out->best_input)) goto fail;
    if (o->embed_baseline && has_embed) {
        snprintf(out->embed.hook, sizeof out->embed.hook, "hook_embed");
        out->embed.layer = -1;
        pl_probe_train_options eo = *o;
        eo.save = 0;  // a baseline, not a probe anyone applies
        eo.controls = 0;
        if (fit_one(&out->embed, s, r, &eo, out->is_test, n_splits, NULL, -1)) {
            pl_probe_free(out->embed.probe);
            out->embed.probe = NULL;
            goto fail;
        }
        out->has_embed = 1;
    }
    pl_strings_free(hooks, n_hooks);
    return 0;
oom:
    pl_fail("out of memory");
fail:
    pl_strings_free(hooks, n_hooks);
    pl_probe_sweep_free(out);
    return -1;
}

// ---- applying ------------------------------------------------------------------------------------

int pl_probe_apply(pl_store *s, const char *ref, int64_t model_id, const int64_t *run_ids, int n_runs, const char *hook,
                   const char *class_name, int64_t *n_scored, int *n_runs_scored) {
    pl_probe *p = NULL;
    pl_probe_record rec;
    if (pl_store_resolve_model(s, model_id, &model_id)) return -1;
    if (pl_probe_load(s, ref, &p, &rec)) return -1;
    int rc = -1;
    float *x = NULL, *probs = NULL;
    int32_t *pos = NULL;
    float *value = NULL;
    int64_t total = 0, *all = NULL;
    if (rec.model_id > 0 && model_id > 0 && rec.model_id != model_id) {
        pl_fail("probe '%s' was trained on model %lld (%s), not on model %lld", rec.name, (long long)rec.model_id,
                rec.model_name, (long long)model_id);
        goto done;
    }
    if (!run_ids) {  // every complete run of the model
        pl_run_filter f = pl_run_filter_complete();
        f.model_id = model_id;
        int64_t n_all;
        if (pl_store_run_ids(s, &f, &all, &n_all, NULL, NULL)) goto done;
        run_ids = all, n_runs = (int)n_all;
    }
    if (p->kind == PL_PROBE_RIDGE) { pl_fail("probe '%s' is a ridge probe; apply scores classifiers", rec.name); goto done; }
    if (hook && strcmp(hook, rec.hook) != 0) {
        pl_fail("probe '%s' was trained on %s, not %s", rec.name, rec.hook, hook);
        goto done;
    }
    int d;
    if (pl_store_hook_row_size(s, rec.hook, rec.model_id, &d)) goto done;
    if (d != p->d) {
        pl_fail("probe '%s' expects %d features but %s rows hold %d", rec.name, p->d, rec.hook, d);
        goto done;
    }
    int fixed = -1;
    if (class_name) {
        for (int c = 0; c < rec.n_classes; c++)
            if (strcmp(rec.class_names[c], class_name) == 0) fixed = c;
        if (fixed < 0) { pl_fail("probe '%s' has no class '%s'", rec.name, class_name); goto done; }
    }
    for (int r = 0; r < n_runs; r++) {
        pl_run_info run;
        if (pl_store_get_run(s, run_ids[r], &run)) goto done;
        if (model_id > 0 && run.model_id != model_id) {
            pl_fail("%s: run %lld is a run of model %lld, not of model %lld", pl_store_path(s), (long long)run.id,
                    (long long)run.model_id, (long long)model_id);
            goto done;
        }
        pl_model_info run_model;
        if (pl_store_get_model(s, run.model_id, &run_model)) goto done;
        const char *sha = run_model.sha256;
        if (rec.model_sha256[0] && strcmp(sha, rec.model_sha256) != 0) {
            pl_fail("probe '%s' was trained on model %s (sha256 %.12s…), but run %lld comes from a different model (%.12s…)",
                    rec.name, rec.model_name, rec.model_sha256, (long long)run.id, sha);
            goto done;
        }
        int32_t *ranges = NULL;
        int n_ranges = 0;
        if (pl_store_recorded_positions(s, run.id, rec.hook, &ranges, &n_ranges)) goto done;
        int n = 0;
        for (int i = 0; i < n_ranges; i++) n += ranges[2 * i + 1] - ranges[2 * i];
        free(pos), free(x), free(probs), free(value);
        pos = malloc(sizeof(int32_t) * (size_t)(n + 1)), x = malloc(sizeof(float) * (size_t)(n + 1) * (size_t)d);
        probs = malloc(sizeof(float) * (size_t)(n + 1) * (size_t)p->n_classes), value = malloc(sizeof(float) * (size_t)(n + 1));
        if (!pos || !x || !probs || !value) { free(ranges); pl_fail("out of memory"); goto done; }
        n = 0;
        for (int i = 0; i < n_ranges; i++)
            for (int q = ranges[2 * i]; q < ranges[2 * i + 1]; q++) pos[n++] = q;
        free(ranges);
        if (n == 0) continue;
        if (pl_store_read_acts(s, run.id, rec.hook, pos, n, d, x)) goto done;
        int64_t bad = pl_first_non_finite(x, n, d);
        if (bad >= 0) {
            pl_fail("%s: %s of run %lld at position %d holds NaN/inf", pl_store_path(s), rec.hook, (long long)run.id, pos[bad / d]);
            goto done;
        }
        if (pl_probe_predict_proba(probs, p, x, n)) goto done;
        int cls = fixed;
        if (cls < 0) {
            char buf[128];
            int lr = strcmp(rec.label, "gold") == 0 ? 0 : pl_store_get_label(s, run.id, rec.label, buf, sizeof buf);
            if (lr < 0) goto done;
            if (strcmp(rec.label, "gold") == 0) {
                pl_example e;
                if (pl_probe_run_example(s, run.id, &e) == 0) {
                    snprintf(buf, sizeof buf, "%s", e.answer), lr = 1;
                    pl_example_free_fields(&e);
                }
            }
            for (int c = 0; lr == 1 && c < rec.n_classes; c++)
                if (strcmp(rec.class_names[c], buf) == 0) cls = c;
        }
        for (int i = 0; i < n; i++) {
            const float *pr = probs + (size_t)i * p->n_classes;
            int c = cls;
            if (c < 0) {
                c = p->n_classes == 2 ? 1 : 0;
                for (int j = 0; p->n_classes > 2 && j < p->n_classes; j++)
                    if (pr[j] > pr[c]) c = j;
            }
            value[i] = pr[c];
        }
        if (pl_store_put_probe_outputs(s, rec.id, run.id, pos, value, n)) goto done;
        total += n;
    }
    if (n_scored) *n_scored = total;
    if (n_runs_scored) *n_runs_scored = n_runs;
    rc = 0;
done:
    free(pos), free(x), free(probs), free(value), free(all);
    pl_probe_free(p);
    pl_probe_record_free(&rec);
    return rc;
}
