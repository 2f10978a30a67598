// The logit lens: the residual stream after each block read through ln_final and the unembedding.
#include "probes/lens/lens.h"

#include <jansson.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/tasks.h"
#include "kernels/kernels.h"
#include "probes/probe_store.h"
#include "runtime/base/error.h"
#include "runtime/hooks.h"
#include "runtime/session.h"
#include "runtime/tokenizer/tokenizer.h"

int pl_lens_unembed(float *logits, const pl_model *m, const float *resid, int n) {
    const pl_config *c = &m->config;
    const pl_backend *be = pl_backend_cpu();
    float *xn = malloc(sizeof(float) * (size_t)n * (size_t)c->d_model);
    if (!xn) return pl_fail("out of memory");
    if (c->arch == PL_ARCH_GPT2) be->layernorm(xn, resid, m->weights.out_norm, m->weights.out_norm_b, n, c->d_model, c->norm_eps);
    else be->rmsnorm(xn, resid, m->weights.out_norm, n, c->d_model, c->norm_eps);
    be->linear(logits, xn, m->weights.output, NULL, n, c->d_model, c->vocab_size);
    free(xn);
    return 0;
}

void pl_lens_free(pl_lens *l) {
    if (!l) return;
    free(l->top_ids), free(l->top_probs), free(l->target_rank), free(l->target_prob), free(l->last_logits);
    memset(l, 0, sizeof *l);
}

typedef struct {
    float *resid;  // [n_rows × n × d]
    int n, d;
} capture;

static void capture_fn(const pl_hook_event *ev, void *user) {
    capture *c = user;
    int row = ev->kind == PL_HOOK_RESID_PRE ? 0 : ev->layer + 1;
    for (int i = 0; i < ev->n_pos; i++) {
        int p = ev->pos0 + i;
        if (p < c->n) memcpy(c->resid + ((size_t)row * c->n + p) * c->d, ev->data + (size_t)i * ev->row_size, sizeof(float) * (size_t)c->d);
    }
}

int pl_logit_lens(pl_lens *out, const pl_model *m, const int32_t *ids, int n, int top_k, int32_t target) {
    memset(out, 0, sizeof *out);
    const pl_config *c = &m->config;
    int V = c->vocab_size, d = c->d_model, R = c->n_layers + 1;
    if (n < 1) return pl_fail("logit lens: no tokens");
    if (top_k < 1) top_k = 1;
    if (top_k > V) top_k = V;
    if (target >= V) return pl_fail("logit lens: target token %d outside the vocabulary (%d)", target, V);
    capture cap = {malloc(sizeof(float) * (size_t)R * (size_t)n * (size_t)d), n, d};
    float *logits = malloc(sizeof(float) * (size_t)n * (size_t)V);
    pl_hooks *hooks = pl_hooks_new(c);
    pl_session *sess = NULL;
    int rc = -1;
    out->n_rows = R, out->n_pos = n, out->top_k = top_k, out->target = target;
    out->top_ids = malloc(sizeof(int32_t) * (size_t)R * n * top_k);
    out->top_probs = malloc(sizeof(float) * (size_t)R * n * top_k);
    out->last_logits = malloc(sizeof(float) * (size_t)n * V);
    if (target >= 0) {
        out->target_rank = malloc(sizeof(int32_t) * (size_t)R * n);
        out->target_prob = malloc(sizeof(float) * (size_t)R * n);
    }
    if (!cap.resid || !logits || !hooks || !out->top_ids || !out->top_probs || !out->last_logits ||
        (target >= 0 && (!out->target_rank || !out->target_prob))) {
        pl_fail("out of memory");
        goto done;
    }
    if (pl_hooks_add(hooks, "blocks.0.hook_resid_pre,blocks.*.hook_resid_post", capture_fn, &cap) < 1) goto done;
    if (pl_session_open(&sess, m, n)) goto done;
    pl_session_set_hooks(sess, hooks);
    const float *unused;
    if (pl_forward(sess, ids, n, &unused)) goto done;
    for (int r = 0; r < R; r++) {
        if (pl_lens_unembed(logits, m, cap.resid + (size_t)r * n * d, n)) goto done;
        if (r == R - 1) memcpy(out->last_logits, logits, sizeof(float) * (size_t)n * V);
        for (int p = 0; p < n; p++) {
            float *l = logits + (size_t)p * V;
            double mx, log_z = pl_logsumexp(l, NULL, V, &mx, NULL);
            int32_t *ti = out->top_ids + ((size_t)r * n + p) * top_k;
            float *tp = out->top_probs + ((size_t)r * n + p) * top_k;
            // Partial selection: top_k is small.
            for (int k = 0; k < top_k; k++) {
                int best = -1;
                for (int v = 0; v < V; v++) {
                    int taken = 0;
                    for (int q = 0; q < k && !taken; q++) taken = ti[q] == v;
                    if (!taken && (best < 0 || l[v] > l[best])) best = v;
                }
                ti[k] = best;
                tp[k] = (float)exp((double)l[best] - mx - log_z);
            }
            if (target >= 0) {
                int above = 0;
                for (int v = 0; v < V; v++) above += l[v] > l[target];
                out->target_rank[(size_t)r * n + p] = above + 1;
                out->target_prob[(size_t)r * n + p] = (float)exp((double)l[target] - mx - log_z);
            }
        }
    }
    rc = 0;
done:
    pl_session_free(sess);
    pl_hooks_free(hooks);
    free(cap.resid), free(logits);
    if (rc) pl_lens_free(out);
    return rc;
}

int32_t pl_lens_answer_token(const pl_model *m, const char *context, const char *answer) {
    if (!m->tokenizer) return pl_fail("%s: the model has no tokenizer", m->path);
    size_t len = strlen(context) + strlen(answer) + 1;
    char *both = malloc(len);
    if (!both) return pl_fail("out of memory");
    snprintf(both, len, "%s%s", context, answer);
    int32_t *a = NULL, *b = NULL;
    int na = pl_tokenizer_encode(m->tokenizer, context, false, &a);
    int nb = pl_tokenizer_encode(m->tokenizer, both, false, &b);
    free(both);
    int32_t id = -1;
    if (na >= 0 && nb >= 0) {
        int i = 0;
        while (i < na && i < nb && a[i] == b[i]) i++;
        if (i < nb) id = b[i];
        else pl_fail("answer '%s' adds no token after '%s'", answer, context);
    }
    free(a), free(b);
    return id;
}

static void piece(char *buf, size_t n, const pl_model *m, int32_t id) {
    size_t len;
    const char *p = pl_tokenizer_piece_bytes(m->tokenizer, id, &len);
    size_t o = 0;
    for (size_t i = 0; p && i < len && o + 5 < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '\n') o += (size_t)snprintf(buf + o, n - o, "\\n");
        else if (ch == '"' || ch == '\\') o += (size_t)snprintf(buf + o, n - o, "\\%c", ch);
        else if (ch < 0x20) o += (size_t)snprintf(buf + o, n - o, "\\x%02x", ch);
        else buf[o++] = (char)ch;
    }
    buf[o] = 0;
}

// A token's bytes as a JSON string; bytes that are not valid UTF-8 are written \xNN.
static json_t *piece_json(const pl_model *m, int32_t id) {
    size_t len;
    const char *p = pl_tokenizer_piece_bytes(m->tokenizer, id, &len);
    if (!p) return json_string("");
    json_t *j = json_stringn(p, len);
    if (j) return j;
    char buf[4 * 64 + 1];
    size_t o = 0;
    for (size_t i = 0; i < len && o + 5 < sizeof buf; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch < 0x80) buf[o++] = (char)ch;
        else o += (size_t)snprintf(buf + o, sizeof buf - o, "\\x%02x", ch);
    }
    buf[o] = 0;
    return json_string(buf);
}

// A token's text as a short, printable heatmap label (valid UTF-8 is kept; newlines become "↵").
static json_t *token_label(const char *piece) {
    char buf[64];
    size_t o = 0;
    for (const char *c = piece; *c && o + 4 < sizeof buf; c++) {
        if (*c == '\n') memcpy(buf + o, "\xe2\x86\xb5", 3), o += 3;
        else buf[o++] = (unsigned char)*c < 0x20 ? ' ' : *c;
    }
    buf[o] = 0;
    json_t *j = json_string(buf);
    return j ? j : json_string("?");
}

// Settings and drawing hints (docs/viewer.md): a heatmap of p(target) over layer × position with
// the run's tokens as column labels, beside the target's probability by layer at the two positions
// of interest. Without a target, the heatmap of the top-1 probability. Returns malloc'd JSON.
static char *lens_params(int64_t run_id, int k, const char *gold, int32_t target, int p_prompt, int p_answer,
                         const pl_token_row *tok, int nt, int R) {
    json_t *cols = json_array(), *row_labels = json_array();
    for (int i = 0; i < nt; i++) json_array_append_new(cols, token_label(tok[i].display));
    for (int r = 0; r < R; r++) {
        char name[16];
        if (r == 0) snprintf(name, sizeof name, "embed");
        else snprintf(name, sizeof name, "L%d", r - 1);
        json_array_append_new(row_labels, json_string(name));
    }
    char title[192], heat_title[160];
    if (target >= 0) {
        snprintf(title, sizeof title, "Logit lens of run %lld: probability of the answer '%s' by layer", (long long)run_id, gold);
        snprintf(heat_title, sizeof heat_title, "p('%s') at every position", gold);
    } else {
        snprintf(title, sizeof title, "Logit lens of run %lld: top-1 probability by layer", (long long)run_id);
        snprintf(heat_title, sizeof heat_title, "top-1 probability at every position");
    }
    // Turned so that the tokens label the rows (readable) and the layers run left to right.
    json_t *heat = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:f, s:f, s:o, s:o, s:b}", "kind", "logit_lens", "matrix",
                             target >= 0 ? "gold_prob" : "top1_prob", "title", heat_title, "y_label", "position (token)",
                             "x_label", "residual stream (L = after block L)", "colorbar_label",
                             target >= 0 ? "p(answer token)" : "top-1 probability", "v_min", 0.0, "v_max", 1.0,
                             "col_labels", cols, "row_labels", row_labels, "transpose", 1);
    json_t *panels = json_array();
    json_array_append_new(panels, heat);
    if (target >= 0)
        json_array_append_new(panels, json_pack("{s:s, s:s, s:s, s:s, s:s, s:f, s:f}", "kind", "by_layer", "series",
                                                "gold_prob@*", "title", "p(answer token) by layer", "x_label",
                                                "lens row (0 = embed, L+1 = block L)", "y_label",
                                                "p(answer token)", "y_min", 0.0, "y_max", 1.0));
    json_t *root = json_pack("{s:I, s:i, s:s, s:i, s:i, s:i, s:s, s:s, s:o, s:{s:s, s:s}}", "run", (json_int_t)run_id,
                             "top_k", k, "target", gold, "target_id", target, "last_prompt_pos", p_prompt, "answer_pos",
                             p_answer, "x", "0 = embeddings, l+1 = blocks.l.hook_resid_post", "title", title, "panels",
                             panels, "series_labels", "gold_prob@last-prompt", "at the last prompt token",
                             "gold_prob@answer", "at the token before the answer");
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return text;
}

int pl_lens_run(pl_store *s, const char *model_path, int64_t model_id, int64_t run_id, int top_k, const char *target_text,
                FILE *report, int json) {
    pl_run_info run;
    if (pl_store_get_run(s, run_id, &run)) return -1;
    if (model_id > 0 && run.model_id != model_id)
        return pl_fail("%s: run %lld is a run of model %lld, not of --model-id %lld", pl_store_path(s), (long long)run_id,
                       (long long)run.model_id, (long long)model_id);
    char model_file[1024];
    if (pl_store_model_file(s, run.model_id, model_path, model_file, sizeof model_file)) return -1;
    pl_model *m = NULL;
    pl_token_row *tok = NULL;
    int32_t *ids = NULL;
    pl_lens lens = {0};
    int nt = 0, rc = -1;
    float *mat = NULL;
    pl_analysis_row *rows = NULL;
    char gold[128] = "", *params = NULL;
    if (pl_model_open(&m, model_file)) goto done;
    if (pl_store_get_tokens(s, run_id, &tok, &nt)) goto done;
    if (nt < 1) { pl_fail("run %lld has no tokens", (long long)run_id); goto done; }
    ids = malloc(sizeof(int32_t) * (size_t)nt);
    if (!ids) { pl_fail("out of memory"); goto done; }
    for (int i = 0; i < nt; i++) ids[i] = tok[i].id;
    if (target_text) snprintf(gold, sizeof gold, "%s", target_text);
    else {
        pl_example e;
        if (pl_probe_run_example(s, run_id, &e) == 0) {
            snprintf(gold, sizeof gold, "%s", e.answer ? e.answer : "");
            pl_example_free_fields(&e);
        } else {
            snprintf(gold, sizeof gold, "%s", run.answer);
        }
    }
    int32_t target = gold[0] ? pl_lens_answer_token(m, PL_ANSWER_PREFIX, gold) : -1;
    if (gold[0] && target < 0) goto done;
    if (pl_logit_lens(&lens, m, ids, nt, top_k, target)) goto done;
    // Positions of interest: the last prompt token and the token ending "A:" (if any).
    pl_probe_at at_prompt = {PL_AT_LAST_PROMPT, 0}, at_answer = {PL_AT_ANSWER, 0};
    int32_t p_prompt = -1, p_answer = -1;
    if (pl_probe_at_resolve(&p_prompt, &at_prompt, tok, nt, run.n_prompt)) p_prompt = -1;
    if (pl_probe_at_resolve(&p_answer, &at_answer, tok, nt, run.n_prompt)) p_answer = -1;
    int R = lens.n_rows, k = lens.top_k;
    rows = malloc(sizeof *rows * (size_t)R * 4);
    if (!rows) { pl_fail("out of memory"); goto done; }
    int nr = 0;
    static const char *series[4] = {"gold_rank@last-prompt", "gold_prob@last-prompt", "gold_rank@answer", "gold_prob@answer"};
    for (int w = 0; w < 2 && target >= 0; w++) {
        int p = w ? p_answer : p_prompt;
        if (p < 0) continue;
        for (int r = 0; r < R; r++) {
            rows[nr++] = (pl_analysis_row){series[2 * w], r, lens.target_rank[(size_t)r * nt + p], NAN, NAN};
            rows[nr++] = (pl_analysis_row){series[2 * w + 1], r, lens.target_prob[(size_t)r * nt + p], NAN, NAN};
        }
    }
    char aname[64];
    snprintf(aname, sizeof aname, "lens.%lld", (long long)run_id);
    params = lens_params(run_id, k, target >= 0 ? gold : "", target, p_prompt, p_answer, tok, nt, R);
    if (!params) { pl_fail("%s: out of memory writing the params of %s", pl_store_path(s), aname); goto done; }
    if (pl_store_put_analysis(s, aname, "logit_lens", params, rows, nr)) goto done;
    size_t cells = (size_t)R * nt * k;
    mat = malloc(sizeof(float) * (cells > (size_t)R * nt ? cells : (size_t)R * nt));
    if (!mat) { pl_fail("out of memory"); goto done; }
    for (size_t i = 0; i < cells; i++) mat[i] = (float)lens.top_ids[i];
    if (pl_store_put_analysis_matrix(s, aname, "top_ids", mat, R * nt, k)) goto done;
    if (pl_store_put_analysis_matrix(s, aname, "top_probs", lens.top_probs, R * nt, k)) goto done;
    for (size_t i = 0; i < (size_t)R * nt; i++) mat[i] = lens.top_probs[i * k];
    if (pl_store_put_analysis_matrix(s, aname, "top1_prob", mat, R, nt)) goto done;
    if (target >= 0) {
        for (size_t i = 0; i < (size_t)R * nt; i++) mat[i] = (float)lens.target_rank[i];
        if (pl_store_put_analysis_matrix(s, aname, "gold_rank", mat, R, nt)) goto done;
        if (pl_store_put_analysis_matrix(s, aname, "gold_prob", lens.target_prob, R, nt)) goto done;
    }
    if (report) {
        int p = p_answer >= 0 ? p_answer : p_prompt;
        char buf[64];
        if (json) {
            // Built with jansson: pieces are the token's bytes (\xNN for bytes that are not UTF-8).
            json_t *layers = json_array();
            for (int r = 0; r < R; r++) {
                char hook[64];
                if (r == 0) snprintf(hook, sizeof hook, "blocks.0.hook_resid_pre");
                else snprintf(hook, sizeof hook, "blocks.%d.hook_resid_post", r - 1);
                json_t *top = json_array();
                for (int q = 0; q < k; q++) {
                    size_t at = ((size_t)r * nt + p) * k + q;
                    json_array_append_new(top, json_pack("{s:i, s:o, s:f}", "id", lens.top_ids[at], "piece",
                                                         piece_json(m, lens.top_ids[at]), "p", (double)lens.top_probs[at]));
                }
                json_t *L = json_pack("{s:i, s:s, s:o}", "row", r, "hook", hook, "top", top);
                if (L && target >= 0) {
                    json_object_set_new(L, "target_rank", json_integer(lens.target_rank[(size_t)r * nt + p]));
                    json_object_set_new(L, "target_prob", json_real(lens.target_prob[(size_t)r * nt + p]));
                }
                json_array_append_new(layers, L);
            }
            json_t *tj = json_string(target >= 0 ? gold : "");
            json_t *root = json_pack("{s:I, s:s, s:i, s:o, s:o}", "run", (json_int_t)run_id, "analysis", aname, "position", p,
                                     "target", tj ? tj : json_string("?"), "layers", layers);
            char *text = root ? json_dumps(root, JSON_REAL_PRECISION(6)) : NULL;
            json_decref(root);
            if (!text) { pl_fail("out of memory writing the lens report"); goto done; }
            fprintf(report, "%s\n", text);
            free(text);
        } else {
            fprintf(report, "logit lens of run %lld at position %d (%s); target '%s'\n", (long long)run_id, p,
                    p == p_answer ? "the token before the answer" : "the last prompt token", target >= 0 ? gold : "(none)");
            fprintf(report, "  %-28s %-6s %-9s top-%d\n", "residual", "rank", "p(target)", k);
            for (int r = 0; r < R; r++) {
                char hook[64];
                if (r == 0) snprintf(hook, sizeof hook, "blocks.0.hook_resid_pre");
                else snprintf(hook, sizeof hook, "blocks.%d.hook_resid_post", r - 1);
                fprintf(report, "  %-28s", hook);
                if (target >= 0) fprintf(report, " %-6d %-9.4f", lens.target_rank[(size_t)r * nt + p], lens.target_prob[(size_t)r * nt + p]);
                else fprintf(report, " %-6s %-9s", "-", "-");
                for (int q = 0; q < k; q++) {
                    size_t at = ((size_t)r * nt + p) * k + q;
                    piece(buf, sizeof buf, m, lens.top_ids[at]);
                    fprintf(report, " '%s' %.3f", buf, lens.top_probs[at]);
                }
                fprintf(report, "\n");
            }
            fprintf(report, "stored as analysis '%s' in %s\n", aname, pl_store_path(s));
        }
    }
    rc = 0;
done:
    free(mat), free(rows), free(ids), free(tok), free(params);
    pl_lens_free(&lens);
    pl_model_free(m);
    return rc;
}
