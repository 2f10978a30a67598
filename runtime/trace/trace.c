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

// A run's parameters, the resume key: sorted-key JSON, so equal settings give equal text. The stop
// strings are the ones the example is generated with (--stop, else the example's or its task's).
static char *run_params(const pl_trace_opts *o, const pl_example *e) {
    const pl_sample_params *sp = &o->sampling;
    const char *const *stop = sp->stop_strings;
    int n_stop = sp->n_stop_strings;
    if (n_stop == 0) n_stop = pl_example_stops(e, &stop);
    json_t *stops = json_array();
    for (int i = 0; i < n_stop; i++) json_array_append_new(stops, json_string(stop[i]));
    json_t *pj = json_pack("{s:i, s:f, s:i, s:f, s:I, s:b, s:o, s:s, s:s, s:s}", "max_new", sp->max_new, "temperature",
                           (double)sp->temperature, "top_k", sp->top_k, "top_p", (double)sp->top_p, "seed",
                           (json_int_t)sp->seed, "stop_at_eos", sp->stop_at_eos, "stop", stops, "record",
                           o->record ? o->record : "", "positions", pl_pos_rule_name(o->positions), "dtype",
                           pl_dtype_name(o->dtype));
    char *params = pj ? json_dumps(pj, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(pj);
    return params;
}

int pl_trace_fail_example(int index, const pl_example *e) {
    char why[1024];
    snprintf(why, sizeof why, "%s", pl_errmsg());  // pl_fail formats into the buffer pl_errmsg reads
    return pl_fail("example %d (%s): %s", index + 1, e->id && e->id[0] ? e->id : "?", why);
}

int pl_trace_encode(const pl_tokenizer *tok, const pl_example *e, int index, int max_ctx, int32_t **ids) {
    *ids = NULL;
    int n = pl_tokenizer_encode(tok, e->prompt ? e->prompt : "", true, ids);
    if (n < 0) return pl_trace_fail_example(index, e);
    if (n == 0 || n >= max_ctx) {
        free(*ids);
        *ids = NULL;
        pl_fail("example %d (%s): prompt of %d tokens does not fit the context (%d)", index + 1, e->id ? e->id : "?", n,
                max_ctx);
        return 0;
    }
    return n;
}

int pl_trace_generate(pl_trace_step *out, pl_session *sess, const pl_tokenizer *tok, const pl_example *e,
                      const int32_t *ids, int n_prompt, const pl_trace_step_opts *o) {
    memset(out, 0, sizeof *out);
    pl_sample_params sp = o->sampling;  // no stop strings given: the example's (or its task's)
    if (sp.n_stop_strings == 0) sp.n_stop_strings = pl_example_stops(e, &sp.stop_strings);
    if (pl_generate(sess, ids, n_prompt, &sp, o->on_token, o->user, &out->gen) != 0) return -1;
    const pl_generation *gen = &out->gen;
    // pl_generate samples the last token without running it; run it so every token has activations.
    const float *unused;
    if (o->run_last && gen->n > 0 && pl_session_n_past(sess) < pl_session_max_ctx(sess) &&
        pl_forward(sess, &gen->ids[gen->n - 1], 1, &unused) != 0)
        goto fail;
    size_t need = 1;
    for (int k = 0; k < gen->n; k++) {
        size_t len;
        if (pl_tokenizer_piece_bytes(tok, gen->ids[k], &len)) need += len;
    }
    out->text = malloc(need);
    if (!out->text) {
        pl_fail("out of memory");
        goto fail;
    }
    size_t len_text = 0;
    for (int k = 0; k < gen->n; k++) {
        size_t len;
        const char *piece = pl_tokenizer_piece_bytes(tok, gen->ids[k], &len);
        if (piece) memcpy(out->text + len_text, piece, len), len_text += len;
    }
    out->text[len_text] = '\0';
    // The generated text before the answer prefix is the chain of thought; the token in which the
    // prefix starts, and every token after it, is the answer.
    const char *at = strstr(out->text, o->answer_prefix && o->answer_prefix[0] ? o->answer_prefix : pl_example_answer_prefix(e));
    out->n_cot = gen->n;
    if (at) {
        size_t ans_at = (size_t)(at - out->text), end = 0;
        for (int k = 0; k < gen->n; k++) {
            size_t len;
            if (pl_tokenizer_piece_bytes(tok, gen->ids[k], &len)) end += len;
            if (end > ans_at) {
                out->n_cot = k;
                break;
            }
        }
    }
    return 0;
fail:
    pl_trace_step_free(out);
    return -1;
}

void pl_trace_step_free(pl_trace_step *st) {
    if (!st) return;
    pl_generation_free(&st->gen);
    free(st->text);
    memset(st, 0, sizeof *st);
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

    char *params = NULL;
    pl_session *sess = NULL;
    pl_hooks *hooks = NULL;
    pl_recorder *rec = NULL;
    prompt_scores ps = {0};
    int32_t *ids = NULL;
    pl_token_row *rows = NULL;
    pl_label *labels = NULL;
    pl_trace_step step = {0};
    int status = -1;
    if (pl_session_open(&sess, m, 0) != 0) goto done;
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
    gen_ctx g = {.stop = o->stop};
    pl_trace_step_opts so = {.sampling = o->sampling, .run_last = true, .on_token = on_token, .user = &g};
    for (int i = 0; i < n; i++) {
        if (o->stop && *o->stop) {
            stats->interrupted = true;
            break;
        }
        const pl_example *e = &d->items[i];
        free(params);
        params = run_params(o, e);
        if (!params) {
            pl_fail("%s: out of memory", pl_store_path(s));
            goto done;
        }
        bool done_before;
        if (pl_store_run_done(s, model_id, example_ids[i], params, &done_before) != 0) goto done;
        if (done_before) {
            stats->n_skipped++;
            continue;
        }
        free(ids);
        ids = NULL;
        int n_prompt = pl_trace_encode(tok, e, i, max_ctx, &ids);
        if (n_prompt < 0) goto done;
        if (n_prompt == 0) {  // does not fit the context
            if (!o->skip_bad) {
                char why[1024];
                snprintf(why, sizeof why, "%s", pl_errmsg());
                pl_fail("%s (--skip-bad skips such examples)", why);
                goto done;
            }
            if (draw) fputc('\n', stderr);
            fprintf(stderr, "probelab: warning: %s; skipped\n", pl_errmsg());
            stats->n_unfit++;
            continue;
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
        pl_trace_step_free(&step);
        if (pl_trace_generate(&step, sess, tok, e, ids, n_prompt, &so) != 0) {
            pl_trace_fail_example(i, e);
            pl_recorder_abort_run(rec);
            goto done;
        }
        if (o->stop && *o->stop) {  // Ctrl-C mid-generation: the run is dropped, never half-complete
            pl_recorder_abort_run(rec);
            stats->interrupted = true;
            break;
        }
        const pl_generation *gen = &step.gen;
        int n_tok = n_prompt + gen->n;
        pl_token_row *grown_rows = realloc(rows, sizeof *rows * (size_t)n_tok);
        if (!grown_rows) {
            pl_fail("%s: out of memory", pl_store_path(s));
            goto done;
        }
        rows = grown_rows;
        for (int p = 0; p < n_prompt; p++) {
            rows[p] = (pl_token_row){.id = ids[p], .segment = PL_SEG_PROMPT, .logprob = ps.logprob[p], .entropy = ps.entropy[p]};
            copy_piece(rows[p].piece, tok, ids[p]);
        }
        for (int k = 0; k < gen->n; k++) {
            pl_token_row *t = &rows[n_prompt + k];
            *t = (pl_token_row){.id = gen->ids[k], .logprob = gen->logprobs[k], .entropy = gen->entropies[k]};
            t->segment = k >= step.n_cot ? PL_SEG_ANSWER : PL_SEG_COT;
            copy_piece(t->piece, tok, gen->ids[k]);
        }
        enum { MAX_CHECK_LABELS = 32 };
        pl_label *grown_labels = realloc(labels, sizeof *labels * (MAX_CHECK_LABELS + 5));
        if (!grown_labels) {
            pl_fail("%s: out of memory", pl_store_path(s));
            goto done;
        }
        labels = grown_labels;
        int n_labels = 0;
        if (o->check) {
            n_labels = o->check(labels, MAX_CHECK_LABELS, e, step.text, o->check_user);
            if (n_labels < 0 || n_labels > MAX_CHECK_LABELS) {
                if (n_labels > MAX_CHECK_LABELS) pl_fail("the answer checker returned %d labels (at most %d)", n_labels, MAX_CHECK_LABELS);
                pl_trace_fail_example(i, e);
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
            {.key = "n_generated", .num = gen->n},
        };
        snprintf(extra[0].text, sizeof extra[0].text, "%s", e->task ? e->task : "");
        snprintf(extra[2].text, sizeof extra[2].text, "%s", e->id ? e->id : "");
        snprintf(extra[3].text, sizeof extra[3].text, "%s", stop_names[gen->stop]);
        for (int k = 0; k < 5; k++) labels[n_labels++] = extra[k];
        if (pl_trace_meta_labels(&labels, &n_labels, e->meta_json) != 0) {
            pl_recorder_abort_run(rec);
            goto done;
        }
        for (int k = 0; k < n_labels; k++)
            if (strcmp(labels[k].key, "correct") == 0 && labels[k].num == 1) stats->n_correct++;
        if (pl_recorder_end_run(rec, rows, n_tok, labels, n_labels, step.text) != 0) goto done;
        stats->n_traced++;
        if (draw) progress(stats->n_traced + stats->n_skipped + stats->n_unfit, n, t0, false);
    }
    if (draw) progress(stats->n_traced + stats->n_skipped + stats->n_unfit, n, t0, true);
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
    free(labels);
    pl_trace_step_free(&step);
    free(params);
    free(example_ids);
    stats->seconds = pl_now_sec() - t0;
    return status;
}
