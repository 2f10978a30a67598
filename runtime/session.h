// A session runs one model forward: it owns the KV cache and the activation buffers of one pass
// (llama2.c's RunState). Prefill runs all prompt tokens at once with matrix-matrix products;
// decode steps reuse the KV cache. Hooks registered with pl_session_set_hooks fire in both.
#ifndef PL_SESSION_H
#define PL_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "kernels/kernels.h"
#include "runtime/base/rng.h"
#include "runtime/hooks.h"
#include "runtime/model/model.h"

typedef struct pl_session pl_session;

// Open a session on m (the shape of every constructor: the handle first, then the inputs).
// max_ctx <= 0 means the model's context length. Returns PL_OK, or PL_ERR_RANGE (max_ctx beyond
// the model's context) or PL_ERR_NOMEM with pl_errmsg() set. The caller owns *out (pl_session_free).
int pl_session_open(pl_session **out, const pl_model *m, int max_ctx);
void pl_session_free(pl_session *s);
// Forget the KV cache: the next pl_forward starts at position 0.
void pl_session_reset(pl_session *s);
// Attach hooks (not owned; NULL detaches).
void pl_session_set_hooks(pl_session *s, const pl_hooks *hooks);
// Compute logits for every position (needed for per-token logprobs), not just the last.
void pl_session_want_all_logits(pl_session *s, bool all);
bool pl_session_wants_all_logits(const pl_session *s);
int pl_session_n_past(const pl_session *s);
int pl_session_max_ctx(const pl_session *s);
const pl_model *pl_session_model(const pl_session *s);

// Run n tokens at positions n_past..n_past+n-1 and append them to the KV cache. *logits points
// into the session: [n × V] if all logits are wanted, else [1 × V] for the last token. Valid
// until the next call. Returns PL_OK, or PL_ERR_RANGE on a token id out of range or a context
// overflow, PL_ERR_USAGE for n <= 0 (nothing changes).
int pl_forward(pl_session *s, const int32_t *tokens, int n, const float **logits);

// ---- generation ----
typedef struct {
    int max_new;            // tokens to generate at most
    float temperature;      // 0 = greedy (argmax)
    int top_k;              // 0 = off
    float top_p;            // 1 = off
    uint64_t seed;
    bool stop_at_eos;
    const char *const *stop_strings;  // stop when the generated text ends with one of these
    int n_stop_strings;
} pl_sample_params;

pl_sample_params pl_sample_defaults(void);

typedef enum { PL_STOP_LENGTH, PL_STOP_EOS, PL_STOP_STRING, PL_STOP_CONTEXT } pl_stop_reason;

typedef struct {
    int32_t *ids;        // generated ids (not including the prompt), n of them
    float *logprobs;     // log p(chosen token) under the unmodified distribution (temperature 1)
    float *entropies;    // entropy (nats) of that distribution
    int n;
    pl_stop_reason stop;
} pl_generation;

// Called after each generated token (may be NULL). Return false to stop early.
typedef bool (*pl_token_fn)(int32_t id, int index, void *user);

// Reset the session, prefill the prompt, then sample. out is filled (free with pl_generation_free).
int pl_generate(pl_session *s, const int32_t *prompt, int n_prompt, const pl_sample_params *p, pl_token_fn on_token,
                void *user, pl_generation *out);
void pl_generation_free(pl_generation *g);

// log p(id) and the entropy (nats) of softmax(logits[V]) at temperature 1, computed in double.
void pl_logprob_entropy(const float *logits, int V, int32_t id, float *logprob, float *entropy);

// Sample one id from logits[V] (temperature/top-k/top-p; greedy if temperature <= 0).
int32_t pl_sample(const float *logits, int V, const pl_sample_params *p, pl_rng *rng);

#endif
