// The pre-CoT analysis (Cox, Kianersi & Garriga-Alonso 2026): do linear probes on the residual
// stream at the last token before the chain of thought decode the final answer, and does steering
// along the probe direction change it?
//
// 1. Decoding: per task, one logistic-regression probe per layer (blocks.L.hook_resid_post at the
//    last prompt token) for the model's own final answer and for the gold answer, with the
//    probes/linear protocol over repeated group splits (lambda by CV inside each training part,
//    held-out accuracy / macro AUROC / log-loss / ECE as means over splits with bootstrap 95% CIs
//    and the spread across splits) beside the controls on the same splits: input-only baselines
//    (bag of tokens, positional one-hot, mean prompt embedding, metadata), shuffled labels,
//    majority, hook_embed and control task. With `by`, also per <task>@<value>. Probes are saved.
// 2. Steering: on items the model answers correctly, regenerate greedily with x <- x + alpha * w
//    added to resid_post of the chosen layers (default: chosen by CV on training rows only) at
//    every position and every generation step. w is the probe's direction from the current
//    answer's class toward another class (seeded choice), mapped to raw residual coordinates and
//    scaled to the mean residual norm of that layer. Controls at the same layer, positions and
//    norm: an isotropic random direction orthogonal to w, a covariance-matched one (a draw from the
//    activations' covariance, orthogonal to w) and the direction of a shuffled-label probe.
// 3. Taxonomy: each steered chain of thought is classified by datasets/ (pl_check_cot): sound,
//    non-entailment, confabulation, hallucination, incomplete, no-answer.
// Results are named analyses in the store (layouts in docs/probes.md).
#ifndef PL_PRECOT_H
#define PL_PRECOT_H

#include <stdint.h>
#include <stdio.h>

#include "probes/linear/logreg.h"
#include "runtime/session.h"
#include "runtime/store/store.h"

#define PL_PRECOT_MAX_ALPHAS 32
#define PL_PRECOT_MAX_LAYERS 64

typedef struct {
    const char *model_path;      // the traced model moved elsewhere (--model PATH; NULL: the path the store
                                 // recorded); its sha256 must match the store's
    const char *tasks;           // comma-separated task names; NULL = every task in the store
    int64_t model_id;            // runs of this model (0 = the store's only model)
    float alphas[PL_PRECOT_MAX_ALPHAS];
    int n_alphas;                // default -8,-4,-2,-1,-0.5,-0.25,0,0.25,0.5,1,2,4,8
    int layers[PL_PRECOT_MAX_LAYERS];
    int n_layers;                // steering layers; 0 = the layer whose own-answer probe has the lowest CV
                                 // log-loss on split 0's training rows (never the held-out rows)
    int n_steer;                 // items steered per task (default 40; 0 = no steering)
    int steer_all;               // 1: also steer items the model gets wrong (default 0: correct only)
    int max_new;                 // generated tokens cap (default 96)
    int n_folds, n_bootstrap;    // default 5 and 1000
    int n_splits;                // repeated held-out group splits every metric is averaged over (default 5)
    const char *by;              // NULL, or a key ("difficulty", any run label): every series also per <task>@<value>
    uint64_t seed;
    FILE *log;                   // progress lines (NULL = quiet)
} pl_precot_options;

pl_precot_options pl_precot_defaults(void);

// Run the analysis on store s (writer handle) and store the analyses "precot.auroc_by_layer",
// "precot.accuracy_by_layer", "precot.log_loss_by_layer", "precot.selectivity_by_layer",
// "precot.auroc_sd_by_layer", "precot.ece_by_layer", "precot.wrong_runs_by_layer", and with
// steering "precot.flip_rate" and "precot.taxonomy". report (may be NULL) receives human-readable
// tables. Returns 0, or -1 with pl_errmsg() (no runs, no task with two answer classes, n_steer > 0
// without a model file, `by` a key no run has, model file differs from the traced model, ...).
int pl_precot_run(pl_store *s, const pl_precot_options *o, FILE *report);

// ---- steering pieces (public for tests) ----

// The direction that raises probe p's logit of class index `to` against class index `from`
// (indices into p->classes), in raw (unstandardized) coordinates, scaled to L2 norm `norm`, into
// out[p->d]. Returns 0, or -1 (ridge probe, index out of range, zero direction).
int pl_steer_direction(float *out, const pl_probe *p, int from, int to, double norm);

// Greedy generation from prompt[n_prompt] with alpha * vectors[i] added to blocks.layers[i].
// hook_resid_post at every position and every step, stopping at "\n", EOS or max_new tokens.
// *text (malloc'd, owned by the caller) receives the decoded generated text. The session's hooks
// are replaced for the call and detached after it.
int pl_steer_generate(char **text, pl_session *sess, const int32_t *prompt, int n_prompt, const int *layers,
                      const float *const *vectors, int n_layers, float alpha, int max_new);

// Wilson 95% interval of k successes in n trials.
void pl_wilson_interval(double *lo, double *hi, int k, int n);

#endif
