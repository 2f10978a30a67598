// pl_trace_dataset: the loop behind `probelab trace`.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "runtime/base/clock.h"
#include "runtime/base/error.h"
#include "runtime/base/sha256.h"
#include "runtime/trace/trace.h"
#include "runtime/tokenizer/tokenizer.h"

pl_trace_opts pl_trace_defaults(void) {
    pl_trace_opts o = {.positions = PL_POS_ALL, .dtype = PL_DTYPE_F16, .sampling = pl_sample_defaults(), .progress = true};
    o.sampling.max_new = 64;
    return o;
}

// Prompt-token logprobs from the prefill's logits (the logits hook sees [n_prompt × V]).
typedef struct {
    const int32_t *ids;
    int n_prompt;
    float *logprob, *entropy;  // [n_prompt]; entry p is for token p given tokens < p
} prompt_scores;

static void on_logits(const pl_hook_event *ev, void *user) {
    prompt_scores *ps = user;
    // Prefill rows (possibly in several chunks) score the next prompt token; decode steps are
    // scored by pl_generate itself.
    for (int r = 0; r < ev->n_pos; r++) {
        int pos = ev->pos0 + r;
        if (pos + 1 >= ps->n_prompt) break;
        pl_logprob_entropy(ev->data + (size_t)r * ev->row_size, ev->row_size, ps->ids[pos + 1], &ps->logprob[pos + 1],
                           &ps->entropy[pos + 1]);
    }
}

typedef struct {
    volatile sig_atomic_t *stop;
} gen_ctx;

static bool on_token(int32_t id, int index, void *user) {
    gen_ctx *g = user;
    return !(g->stop && *g->stop);
}

static void copy_piece(char dst[48], const pl_tokenizer *t, int32_t id) {
    size_t len;
    const char *p = pl_tokenizer_piece_bytes(t, id, &len);
    if (!p) len = 0;
    if (len > 47) len = 47;
    memcpy(dst, p, len);
    dst[len] = '\0';
}

static void progress(int done, int total, double t0, bool final) {
    double dt = pl_now_sec() - t0, rate = dt > 0 ? done / dt : 0;
    double eta = rate > 0 ? (total - done) / rate : 0;
    int width = 30, fill = total > 0 ? width * done / total : width;
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
    bar[width] = '\0';
    fprintf(stderr, "\r[%s] %d/%d  %.2f ex/s  ETA %d:%02d ", bar, done, total, rate, (int)eta / 60, (int)eta % 60);
    if (final) fputc('\n', stderr);
    fflush(stderr);
}

static char *model_config_json(const pl_model *m) {
    const pl_config *c = &m->config;
    json_t *j = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:s}", "arch", c->arch_name, "d_model", c->d_model,
                          "n_layers", c->n_layers, "n_heads", c->n_heads, "n_kv_heads", c->n_kv_heads, "head_dim",
                          c->head_dim, "d_ff", c->d_ff, "vocab_size", c->vocab_size, "context_length",
                          c->context_length, "format", m->format);
    char *out = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    return out;
}

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int pl_trace_dataset(pl_trace_stats *stats, pl_store *s, const pl_model *m, const pl_dataset *d, const pl_trace_opts *o) {
    memset(stats, 0, sizeof *stats);
    double t0 = pl_now_sec();
    if (!m->tokenizer) return pl_fail("%s: the model has no tokenizer; trace needs one to build prompts", m->path);
    const pl_tokenizer *tok = m->tokenizer;
    int n = d->n;
    if (o->limit > 0 && o->limit < n) n = o->limit;
    stats->n_examples = n;

    // Model, dataset and examples rows (idempotent: found by sha256 / index on a rerun).
    char data_hex[65];
    pl_model_identity ident;
    if (pl_model_identify(m->path, &ident) != 0) return -1;
    if (o->dataset_path) {
        if (pl_sha256_file(data_hex, o->dataset_path) != 0) return -1;
    } else {
        snprintf(data_hex, sizeof data_hex, "in-memory-%d", d->n);
    }
    int64_t model_id, dataset_id;
    int64_t *example_ids = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    char *config = model_config_json(m);
    if (!example_ids || !config) {
        free(example_ids), free(config);
        return pl_fail("%s: out of memory", pl_store_path(s));
    }
    int rc = pl_store_begin(s);
    if (rc == 0) rc = pl_store_put_model(s, ident.name, ident.path, ident.sha256, config, &model_id);
    if (rc == 0)
        rc = pl_store_put_dataset(s, o->dataset_path ? base_name(o->dataset_path) : "in-memory",
                                  o->dataset_path ? o->dataset_path : "", data_hex, d->n, &dataset_id);
    for (int i = 0; rc == 0 && i < n; i++) {
        const pl_example *e = &d->items[i];
        pl_store_example se = {.ext_id = e->id, .task = e->task, .prompt = e->prompt, .cot = e->cot, .answer = e->answer,
                               .options = (const char *const *)e->options, .n_options = e->n_options,
                               .difficulty = e->difficulty, .meta_json = e->meta_json};
        rc = pl_store_put_example(s, dataset_id, i, &se, &example_ids[i]);
    }
    free(config);
    if (rc != 0) {
        pl_store_rollback(s);
        free(example_ids);
        return -1;
    }
    if (pl_store_commit(s) != 0) {
        free(example_ids);
        return -1;
    }

    // Parameters: the resume key. Sorted-key JSON so equal settings give equal text.
    pl_sample_params sp = o->sampling;
    static const char *const default_stop[] = {"\n"};
    if (sp.n_stop_strings == 0) sp.stop_strings = default_stop, sp.n_stop_strings = 1;
    json_t *stops = json_array();
    for (int i = 0; i < sp.n_stop_strings; i++) json_array_append_new(stops, json_string(sp.stop_strings[i]));
    json_t *pj = json_pack("{s:i, s:f, s:i, s:f, s:I, s:b, s:o, s:s, s:s, s:s}", "max_new", sp.max_new, "temperature",
                           (double)sp.temperature, "top_k", sp.top_k, "top_p", (double)sp.top_p, "seed", (json_int_t)sp.seed,
                           "stop_at_eos", sp.stop_at_eos, "stop", stops, "record", o->record ? o->record : "",
                           "positions", pl_pos_rule_name(o->positions), "dtype", pl_dtype_name(o->dtype));
    char *params = json_dumps(pj, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(pj);

    pl_session *sess = NULL;
    pl_hooks *hooks = NULL;
    pl_recorder *rec = NULL;
    prompt_scores ps = {0};
    int32_t *ids = NULL;
    pl_token_row *rows = NULL;
    char *text = NULL;
    int status = -1;
    if (pl_session_new(m, 0, &sess) != 0) goto done;
    hooks = pl_hooks_new(&m->config);
    if (!hooks) {
        pl_fail("%s: cannot create hooks", m->path);
        goto done;
    }
    char logits_name[64];
    pl_hook_name(PL_HOOK_LOGITS, -1, logits_name, sizeof logits_name);
    if (pl_hooks_add(hooks, logits_name, on_logits, &ps) < 0) goto done;
    pl_record_opts ro = {.record = o->record, .positions = o->positions, .dtype = o->dtype, .queue_bytes = o->queue_bytes};
    if (pl_recorder_new(&rec, s, hooks, &ro) != 0) goto done;
    pl_session_set_hooks(sess, hooks);
    int max_ctx = pl_session_max_ctx(sess);
    bool draw = o->progress && isatty(2);
    for (int i = 0; i < n; i++) {
        if (o->stop && *o->stop) {
            stats->interrupted = true;
            break;
        }
        bool done_before;
        if (pl_store_run_done(s, model_id, example_ids[i], params, &done_before) != 0) goto done;
        if (done_before) {
            stats->n_skipped++;
            continue;
        }
        const pl_example *e = &d->items[i];
        free(ids);
        ids = NULL;
        int n_prompt = pl_tokenizer_encode(tok, e->prompt ? e->prompt : "", true, &ids);
        if (n_prompt < 0) {
            pl_fail("example %d (%s): %s", i + 1, e->id ? e->id : "?", pl_errmsg());
            goto done;
        }
        if (n_prompt == 0 || n_prompt >= max_ctx) {
            pl_fail("example %d (%s): prompt of %d tokens does not fit the context (%d)", i + 1, e->id ? e->id : "?",
                       n_prompt, max_ctx);
            goto done;
        }
        float *lp = realloc(ps.logprob, sizeof(float) * (size_t)n_prompt);
        float *en = realloc(ps.entropy, sizeof(float) * (size_t)n_prompt);
        if (lp) ps.logprob = lp;
        if (en) ps.entropy = en;
        if (!lp || !en) {
            pl_fail("%s: out of memory", pl_store_path(s));
            goto done;
        }
        ps.ids = ids;
        ps.n_prompt = n_prompt;
        for (int p = 0; p < n_prompt; p++) ps.logprob[p] = ps.entropy[p] = NAN;
        if (pl_recorder_begin_run(rec, model_id, example_ids[i], params, n_prompt) != 0) goto done;
        gen_ctx g = {.stop = o->stop};
        pl_generation gen;
        if (pl_generate(sess, ids, n_prompt, &sp, on_token, &g, &gen) != 0) {
            pl_fail("example %d (%s): %s", i + 1, e->id ? e->id : "?", pl_errmsg());
            pl_recorder_abort_run(rec);
            goto done;
        }
        if (o->stop && *o->stop) {  // Ctrl-C mid-generation: the run is dropped, never half-complete
            pl_generation_free(&gen);
            pl_recorder_abort_run(rec);
            stats->interrupted = true;
            break;
        }
        // pl_generate samples the last token without running it; run it so every token has activations.
        const float *unused;
        if (gen.n > 0 && pl_session_n_past(sess) < max_ctx &&
            pl_forward(sess, &gen.ids[gen.n - 1], 1, &unused) != 0) {
            pl_fail("example %d: %s", i + 1, pl_errmsg());
            pl_generation_free(&gen);
            pl_recorder_abort_run(rec);
            goto done;
        }
        // Tokens with segments: generated text before "A:" is the chain of thought; the token that
        // starts the answer prefix and everything after it is the answer.
        int n_tok = n_prompt + gen.n;
        pl_token_row *grown_rows = realloc(rows, sizeof *rows * (size_t)n_tok);
        size_t text_need = 1;
        for (int k = 0; k < gen.n; k++) {
            size_t len;
            if (pl_tokenizer_piece_bytes(tok, gen.ids[k], &len)) text_need += len;
        }
        char *grown_text = realloc(text, text_need);
        if (grown_rows) rows = grown_rows;
        if (grown_text) text = grown_text;
        if (!grown_rows || !grown_text) {
            pl_generation_free(&gen);
            pl_fail("%s: out of memory", pl_store_path(s));
            goto done;
        }
        size_t text_len = 0;
        int *tok_end = malloc(sizeof(int) * (size_t)(gen.n > 0 ? gen.n : 1));
        if (!tok_end) {
            pl_generation_free(&gen);
            pl_fail("%s: out of memory", pl_store_path(s));
            goto done;
        }
        for (int k = 0; k < gen.n; k++) {
            size_t len;
            const char *piece = pl_tokenizer_piece_bytes(tok, gen.ids[k], &len);
            if (!piece) len = 0;
            memcpy(text + text_len, piece, len);
            text_len += len;
            tok_end[k] = (int)text_len;
        }
        text[text_len] = '\0';
        const char *ans = strstr(text, PL_ANSWER_PREFIX);
        int ans_at = ans ? (int)(ans - text) : -1;
        for (int p = 0; p < n_prompt; p++) {
            rows[p] = (pl_token_row){.id = ids[p], .segment = PL_SEG_PROMPT, .logprob = ps.logprob[p], .entropy = ps.entropy[p]};
            copy_piece(rows[p].piece, tok, ids[p]);
        }
        for (int k = 0; k < gen.n; k++) {
            pl_token_row *t = &rows[n_prompt + k];
            *t = (pl_token_row){.id = gen.ids[k], .logprob = gen.logprobs[k], .entropy = gen.entropies[k]};
            t->segment = ans_at >= 0 && tok_end[k] > ans_at ? PL_SEG_ANSWER : PL_SEG_COT;
            copy_piece(t->piece, tok, gen.ids[k]);
        }
        free(tok_end);
        pl_label labels[32];
        int n_labels = 0;
        if (o->check) {
            n_labels = o->check(labels, 28, e, text, o->check_user);
            if (n_labels < 0) {
                pl_fail("example %d (%s): %s", i + 1, e->id ? e->id : "?", pl_errmsg());
                pl_generation_free(&gen);
                pl_recorder_abort_run(rec);
                goto done;
            }
        }
        static const char *const stop_names[] = {"length", "eos", "stop-string", "context"};
        pl_label extra[] = {
            {.key = "task", .is_text = true},
            {.key = "difficulty", .num = e->difficulty},
            {.key = "example", .is_text = true},
            {.key = "stop", .is_text = true},
            {.key = "n_generated", .num = gen.n},
        };
        snprintf(extra[0].text, sizeof extra[0].text, "%s", e->task ? e->task : "");
        snprintf(extra[2].text, sizeof extra[2].text, "%s", e->id ? e->id : "");
        snprintf(extra[3].text, sizeof extra[3].text, "%s", stop_names[gen.stop]);
        for (int k = 0; k < 5; k++) labels[n_labels++] = extra[k];
        for (int k = 0; k < n_labels; k++)
            if (strcmp(labels[k].key, "correct") == 0 && labels[k].num == 1) stats->n_correct++;
        pl_generation_free(&gen);
        if (pl_recorder_end_run(rec, rows, n_tok, labels, n_labels, text) != 0) goto done;
        stats->n_traced++;
        if (draw) progress(stats->n_traced + stats->n_skipped, n, t0, false);
    }
    if (draw) progress(stats->n_traced + stats->n_skipped, n, t0, true);
    status = 0;
done:
    if (rec) {
        stats->tensor_bytes = pl_recorder_bytes(rec);
        if (pl_recorder_close(rec) != 0) status = -1;  // drains the queue: every committed run is durable
    }
    pl_session_free(sess);
    pl_hooks_free(hooks);
    free(ps.logprob);
    free(ps.entropy);
    free(ids);
    free(rows);
    free(text);
    free(params);
    free(example_ids);
    stats->seconds = pl_now_sec() - t0;
    return status;
}
