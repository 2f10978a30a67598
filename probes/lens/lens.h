// The logit lens (nostalgebraist 2020): read the residual stream after every block through the
// model's final norm and unembedding, ln_final(resid) · W_Uᵀ, to see which tokens each layer
// already favours. Row 0 is the embeddings (blocks.0.hook_resid_pre), row l+1 the output of block
// l (blocks.l.hook_resid_post); the last row reproduces the model's own logits.
#ifndef PL_LENS_H
#define PL_LENS_H

#include <stdint.h>
#include <stdio.h>

#include "runtime/model/model.h"
#include "runtime/store/store.h"

typedef struct {
    int n_rows;           // n_layers + 1 (embeddings, then each block)
    int n_pos;
    int top_k;
    int32_t *top_ids;     // [n_rows × n_pos × top_k], most probable first
    float *top_probs;     // [n_rows × n_pos × top_k] softmax probabilities
    int32_t target;       // token whose rank is tracked (-1: none)
    int32_t *target_rank; // [n_rows × n_pos] 1 = top token (NULL if no target)
    float *target_prob;   // [n_rows × n_pos]
    float *last_logits;   // [n_pos × V] lens logits of the last row (the model's own logits)
} pl_lens;

// ln_final + unembedding of resid[n × d] into logits[n × V] (caller-allocated), with the same
// kernels as the forward pass.
int pl_lens_unembed(float *logits, const pl_model *m, const float *resid, int n);

// Run ids[n] through m once (hooks on the residual stream) and fill *out (caller frees with
// pl_lens_free). target: a token id to rank (-1: none).
int pl_logit_lens(pl_lens *out, const pl_model *m, const int32_t *ids, int n, int top_k, int32_t target);
void pl_lens_free(pl_lens *l);

// The first token of `answer` as it would follow `context` ("A:") in m's tokenization, or -1 with
// pl_errmsg() if there is none.
int32_t pl_lens_answer_token(const pl_model *m, const char *context, const char *answer);

// The lens of a stored run: its tokens re-run through the traced model, reopened from the path the
// store recorded or from model_path (NULL or a relocated copy; its sha256 must match, see
// pl_store_model_file); model_id 0 or the run's model. The gold answer's first token ranked (target_text overrides; else the example's
// answer, else the run's own answer label), stored as analysis "lens.<run_id>". report (may be
// NULL): a table per layer at the answer position (or the last prompt token) of the top-k tokens
// and the target's rank; json: that table as JSON instead.
int pl_lens_run(pl_store *s, const char *model_path, int64_t model_id, int64_t run_id, int top_k, const char *target_text,
                FILE *report, int json);

#endif
