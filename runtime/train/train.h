// The trainer for the bundled chain-of-thought model: a small Llama (token embedding, RMSNorm,
// RoPE attention with grouped-query heads, SwiGLU MLP, tied unembedding) trained with AdamW,
// linear warm-up + cosine decay and global-norm gradient clipping, built from the layer library
// (kernels/cpu/layers.h). The loss is cross-entropy on the chain of thought and the answer only:
// the prompt is context. Training is deterministic given the seed: the batch of step s depends
// only on (seed, s), so a run resumed from a checkpoint continues bit-identically.
//
// Examples come from a caller-supplied source (pl_train_source): runtime/ sits below datasets/,
// so the `probelab train` command plugs the task generators in (cli/cmd_train.c).
#ifndef PL_TRAIN_H
#define PL_TRAIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

// One training text. The first prompt_len bytes of text are the prompt (no loss); the rest
// (chain of thought, "A:", answer, "\n") is predicted. text is malloc'd; the trainer frees it.
typedef struct {
    char *text;
    size_t prompt_len;
} pl_train_text;

// Produce example number `index` of the stream for `seed` (deterministic in both). Returns 0, or
// -1 with pl_errmsg set.
typedef int (*pl_train_source_fn)(void *user, uint64_t seed, uint64_t index, pl_train_text *out);
typedef struct {
    pl_train_source_fn next;
    void *user;
} pl_train_source;

typedef struct {
    // architecture
    int d_model, n_layers, n_heads, n_kv_heads, d_ff, context_length;
    float norm_eps, rope_theta;
    // optimisation
    int steps, batch, warmup;
    int stop_at;            // stop after this step (0 = at `steps`); the schedule still spans `steps`
    float lr, min_lr_frac;  // cosine decays from lr to lr * min_lr_frac at the last step
    float weight_decay, grad_clip, beta1, beta2;
    uint64_t seed;
    int threads;            // OpenBLAS threads (0 = leave as is)
    // files and logging
    const char *out_path;         // GGUF written at the end (NULL = none)
    const char *checkpoint_path;  // written every checkpoint_every steps and at the end (NULL = none)
    int checkpoint_every;
    const char *resume_path;      // continue from this checkpoint (NULL = fresh start)
    int log_every;
    const char *model_name;       // general.name in the GGUF
} pl_train_options;

// The defaults of `probelab train` (the bundled model's architecture).
pl_train_options pl_train_defaults(void);

typedef struct pl_trainer pl_trainer;

typedef struct {
    int step;           // the step just taken (1-based count of steps done)
    double loss;        // mean masked cross-entropy of the batch (nats per predicted token)
    double grad_norm;   // before clipping
    float lr;
    int n_tokens;       // positions in the batch
    int n_predicted;    // positions with loss
} pl_train_stats;

// A trainer with freshly initialised weights (from opt->seed). The caller owns *out (pl_trainer_free).
int pl_trainer_new(const pl_train_options *opt, pl_trainer **out);
void pl_trainer_free(pl_trainer *t);
// One optimisation step on the batch of the current step drawn from src.
int pl_trainer_step(pl_trainer *t, const pl_train_source *src, pl_train_stats *stats);
// Steps done so far.
int pl_trainer_step_count(const pl_trainer *t);
// All parameters as one flat array (owned by the trainer) and their count.
const float *pl_trainer_params(const pl_trainer *t, size_t *n);
// Logits [n × V] of one sequence of token ids (positions 0..n-1), written into logits (caller-
// allocated, n × pl_trainer_vocab_size floats). n must be <= context_length.
int pl_trainer_logits(pl_trainer *t, const int32_t *ids, int n, float *logits);
int pl_trainer_vocab_size(const pl_trainer *t);
// Mean masked loss over the given texts without updating anything.
int pl_trainer_eval_loss(pl_trainer *t, const pl_train_text *texts, int n_texts, double *loss);

// Checkpoint: options that define the run, step, weights and AdamW moments. Loading restores a
// trainer created with the same architecture exactly. -1 with pl_errmsg naming the file.
int pl_trainer_save_checkpoint(const pl_trainer *t, const char *path);
int pl_trainer_load_checkpoint(pl_trainer *t, const char *path);
// Write the model as a GGUF v3 llama file (F32, tied embeddings, the task tokenizer).
int pl_trainer_export_gguf(const pl_trainer *t, const char *path);

// The whole `probelab train` run: create or resume, train to opt->steps logging to log, write
// checkpoints and the GGUF. Returns 0 or -1 (pl_errmsg).
int pl_train_run(const pl_train_options *opt, const pl_train_source *src, FILE *log);

// Benchmark: training tokens/s and achieved GFLOP/s of the default model on synthetic batches,
// next to OpenBLAS sgemm's GFLOP/s on the same matrix shapes measured in the same run.
int pl_bench_train(FILE *out);

#endif
