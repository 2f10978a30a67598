// Generation: prefill the prompt, then sample token by token (greedy, or temperature / top-k /
// top-p with a seeded RNG), stopping on EOS, a stop string, the length limit or the context end.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/error.h"
#include "runtime/session.h"
#include "runtime/tokenizer/tokenizer.h"

pl_sample_params pl_sample_defaults(void) {
    return (pl_sample_params){.max_new = 64, .temperature = 0.0f, .top_k = 0, .top_p = 1.0f, .seed = 42,
                              .stop_at_eos = true};
}

typedef struct {
    float p;
    int32_t id;
} prob_index;

static int by_prob_desc(const void *a, const void *b) {
    float pa = ((const prob_index *)a)->p, pb = ((const prob_index *)b)->p;
    if (pa != pb) return pa < pb ? 1 : -1;
    return ((const prob_index *)a)->id - ((const prob_index *)b)->id;
}

int32_t pl_sample(const float *logits, int V, const pl_sample_params *p, pl_rng *rng) {
    int32_t best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    if (p->temperature <= 0.0f) return best;
    prob_index *pi = malloc((size_t)V * sizeof *pi);
    float *prob = malloc((size_t)V * sizeof *prob);
    if (!pi || !prob) {  // out of memory: greedy rather than nothing
        free(pi), free(prob);
        return best;
    }
    for (int i = 0; i < V; i++) prob[i] = (logits[i] - logits[best]) / p->temperature;
    pl_softmax_row(prob, V, PL_SUM_DOUBLE);
    for (int i = 0; i < V; i++) pi[i] = (prob_index){.p = prob[i], .id = i};
    free(prob);
    qsort(pi, (size_t)V, sizeof *pi, by_prob_desc);
    int n = V;
    if (p->top_k > 0 && p->top_k < n) n = p->top_k;
    if (p->top_p < 1.0f) {  // smallest prefix whose mass reaches top_p
        double mass = 0;
        for (int i = 0; i < n; i++) {
            mass += pi[i].p;
            if (mass >= p->top_p) {
                n = i + 1;
                break;
            }
        }
    }
    double total = 0;
    for (int i = 0; i < n; i++) total += pi[i].p;
    double r = pl_rng_uniform(rng) * total, acc = 0;
    int32_t chosen = pi[n - 1].id;
    for (int i = 0; i < n; i++) {
        acc += pi[i].p;
        if (r < acc) {
            chosen = pi[i].id;
            break;
        }
    }
    free(pi);
    return chosen;
}

void pl_logprob_entropy(const float *logits, int V, int32_t id, float *logprob, float *entropy) {
    double max, h, log_z = pl_logsumexp(logits, NULL, V, &max, &h);
    *logprob = (float)((double)logits[id] - max - log_z);
    *entropy = (float)h;
}

static bool ends_with_stop(const char *text, size_t len, const pl_sample_params *p) {
    for (int i = 0; i < p->n_stop_strings; i++) {
        size_t k = strlen(p->stop_strings[i]);
        if (k > 0 && len >= k && memcmp(text + len - k, p->stop_strings[i], k) == 0) return true;
    }
    return false;
}

int pl_generate(pl_session *s, const int32_t *prompt, int n_prompt, const pl_sample_params *p, pl_token_fn on_token,
                void *user, pl_generation *out) {
    memset(out, 0, sizeof *out);
    const pl_model *m = pl_session_model(s);
    int V = m->config.vocab_size;
    int32_t eos = m->tokenizer ? pl_tokenizer_eos(m->tokenizer) : -1;
    pl_session_reset(s);
    const float *logits;
    if (pl_forward(s, prompt, n_prompt, &logits) != 0) return -1;
    // With all logits on, the prefill returned n_prompt rows: the next-token row is the last one.
    const float *last = pl_session_wants_all_logits(s) ? logits + (size_t)(n_prompt - 1) * V : logits;
    int cap = p->max_new > 0 ? p->max_new : 1;
    out->ids = malloc((size_t)cap * sizeof *out->ids);
    out->logprobs = malloc((size_t)cap * sizeof *out->logprobs);
    out->entropies = malloc((size_t)cap * sizeof *out->entropies);
    pl_rng rng = pl_rng_state(p->seed);
    size_t text_len = 0, text_cap = 256;
    char *text = malloc(text_cap);
    out->stop = PL_STOP_LENGTH;
    for (int i = 0; i < p->max_new; i++) {
        const float *row = last;
        int32_t id = pl_sample(row, V, p, &rng);
        pl_logprob_entropy(row, V, id, &out->logprobs[out->n], &out->entropies[out->n]);
        out->ids[out->n++] = id;
        bool keep_going = on_token ? on_token(id, i, user) : true;
        if (p->stop_at_eos && id == eos) {
            out->stop = PL_STOP_EOS;
            break;
        }
        if (m->tokenizer && p->n_stop_strings > 0) {
            size_t pl_len;
            const char *piece = pl_tokenizer_piece_bytes(m->tokenizer, id, &pl_len);
            while (text_len + pl_len + 1 > text_cap) text = realloc(text, text_cap *= 2);
            memcpy(text + text_len, piece, pl_len);
            text_len += pl_len;
            if (ends_with_stop(text, text_len, p)) {
                out->stop = PL_STOP_STRING;
                break;
            }
        }
        if (!keep_going || i + 1 == p->max_new) break;
        if (pl_session_n_past(s) >= pl_session_max_ctx(s)) {
            out->stop = PL_STOP_CONTEXT;
            break;
        }
        if (pl_forward(s, &id, 1, &last) != 0) {
            free(text);
            return -1;
        }
    }
    free(text);
    return 0;
}

void pl_generation_free(pl_generation *g) {
    free(g->ids);
    free(g->logprobs);
    free(g->entropies);
    memset(g, 0, sizeof *g);
}
