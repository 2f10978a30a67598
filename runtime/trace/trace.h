// Tracing a dataset: for each example, build the prompt, generate the chain of thought and the
// answer, label token segments by the task delimiters, check the answer, and record tokens,
// labels and the requested hooks into a store. Rerunning skips examples already complete with the
// same model and parameters; a stop flag (set by a SIGINT handler) ends it cleanly.
//
// Layering: this is orchestration (library pl_trace). The store only stores: examples come in as
// data (a pl_dataset) and the answer checker as a callback (pl_trace_check_cot for the built-in
// tasks, or the caller's own).
#ifndef PL_TRACE_H
#define PL_TRACE_H

#include <signal.h>
#include <stdbool.h>

#include "datasets/tasks.h"
#include "runtime/session.h"
#include "runtime/store/recorder.h"
#include "runtime/store/store.h"
#include "runtime/tokenizer/tokenizer.h"

// Fill up to max_labels labels for one generated continuation; return how many (or -1 on error).
typedef int (*pl_trace_check_fn)(pl_label *labels, int max_labels, const pl_example *e, const char *generated,
                                 void *user);

typedef struct {
    const char *record;         // hook globs to record (NULL = tokens and labels only)
    pl_pos_rule positions;      // ALL, PROMPT, GENERATED or LAST_PROMPT
    pl_dtype dtype;             // storage dtype of tensors
    pl_sample_params sampling;  // greedy by default; without stop strings each example stops at its
                                // own (dataset field stop) or its task's ("\n")
    int limit;                  // trace at most this many examples of the dataset (0 = all)
    bool progress;              // progress bar on stderr (only drawn if stderr is a TTY)
    volatile sig_atomic_t *stop;  // when it becomes non-zero, the current run is aborted and we return
    pl_trace_check_fn check;    // may be NULL (no answer labels)
    void *check_user;
    const char *dataset_path;   // recorded in the datasets table (name, sha256)
    size_t queue_bytes;         // writer queue bound (0 = default)
    bool skip_bad;              // an example whose prompt does not fit the context is skipped (warned
                                // on stderr, counted in n_unfit) instead of failing the trace
} pl_trace_opts;

pl_trace_opts pl_trace_defaults(void);

// The answer checker of the built-in tasks (a pl_trace_check_fn; user is unused). It defines the
// label vocabulary that `runs --summary`, the probes and the pre-CoT analysis read:
//   answer        the extracted final answer (text; absent if the model gave none)
//   gold          the example's gold answer (text)
//   has_answer    1 if an answer was found after the answer prefix, else 0
//   correct       1 if the answer equals the gold answer (task-specific normalisation), else 0
//   steps_valid, entailed, n_valid_steps   (only for tasks with a step checker) every step is
//                 true / the answer follows from the last step / how many steps are true
//   n_steps       steps between '|' separators
//   class         the CoT taxonomy class (pl_cot_class_name: sound, confabulation, ...)
// pl_trace_dataset adds task, difficulty, example (the example id), stop (length, eos,
// stop-string, context) and n_generated to every run, then the example's meta (see
// pl_trace_meta_labels). Returns the number of labels or -1.
int pl_trace_check_cot(pl_label *labels, int max_labels, const pl_example *e, const char *generated, void *user);
// Append the scalar values of an example's meta object to (*labels)[0..*n) (grown with realloc):
// strings (up to 127 bytes) as text, numbers as numbers, true/false as 1/0, each under its key, or
// under meta.KEY when a label already present uses KEY. Null, lists, objects, longer strings and
// keys longer than 31 bytes stay in examples.meta only. Returns 0 or -1 (out of memory).
int pl_trace_meta_labels(pl_label **labels, int *n, const char *meta_json);

typedef struct {
    int n_examples;     // examples considered (after limit)
    int n_skipped;      // already complete in the store
    int n_unfit;        // skipped (skip_bad) because the prompt does not fit the context
    int n_traced;       // traced now
    int n_correct;      // of those, label correct = 1
    bool interrupted;   // stopped by the flag
    double seconds;
    int64_t tensor_bytes;
} pl_trace_stats;

// ---- one example: the generate step that trace and `train eval` share ----------------------

// pl_fail with "example N (ID): " before the current pl_errmsg(); returns -1.
int pl_trace_fail_example(int index, const pl_example *e);
// Tokenize example e (number index, for messages) with BOS. Returns the prompt length; 0 if the
// prompt is empty or does not fit a context of max_ctx tokens (pl_errmsg names the example and
// the sizes; *ids is NULL); -1 on failure. The caller frees *ids.
int pl_trace_encode(const pl_tokenizer *tok, const pl_example *e, int index, int max_ctx, int32_t **ids);

typedef struct {
    pl_sample_params sampling;  // no stop strings: the example's (pl_example_stops)
    const char *answer_prefix;  // splits the chain of thought from the answer (NULL: the example's,
                                // pl_example_answer_prefix)
    bool run_last;              // run the last generated token through the model too, so hooks see
                                // every token (pl_generate samples it without running it)
    pl_token_fn on_token;       // may be NULL; returning false stops the generation
    void *user;
} pl_trace_step_opts;

typedef struct {
    pl_generation gen;  // generated ids, logprobs, entropies and the stop reason
    char *text;         // the generated text (the tokens' bytes), NUL-terminated
    int n_cot;          // generated tokens [0, n_cot) are the chain of thought, [n_cot, gen.n) the
                        // answer (from the token in which the answer prefix starts)
} pl_trace_step;

// Generate the continuation of a prompt (ids from pl_trace_encode) on sess and split it into chain
// of thought and answer. Fills *out (pl_trace_step_free); returns 0 or -1 (pl_errmsg).
int pl_trace_generate(pl_trace_step *out, pl_session *sess, const pl_tokenizer *tok, const pl_example *e,
                      const int32_t *ids, int n_prompt, const pl_trace_step_opts *o);
void pl_trace_step_free(pl_trace_step *st);

// Generate and check examples without a store (`probelab train eval`): each example of d through
// pl_trace_generate with the sampling in o, then pl_trace_check_cot; returns the labels' tallies.
typedef struct {
    int n;              // examples checked
    int n_unfit;        // skipped: the prompt does not fit the context
    int correct;        // label correct = 1
    int steps_checked;  // the task has a step checker (label steps_valid present)
    int steps_valid;    // steps_valid = 1
    int sound;          // class = sound
} pl_trace_tally;
// max_new <= 0 in sampling generates up to the context. Returns 0 or -1 (pl_errmsg).
int pl_trace_eval(pl_trace_tally *out, pl_session *sess, const pl_tokenizer *tok, const pl_dataset *d,
                  const pl_trace_step_opts *o);

// ---- a dataset into a store ------------------------------------------------------------------

// Trace examples of d with model m into store s (opened PL_STORE_WRITE). Returns 0 (also when
// interrupted: see stats->interrupted) or -1 with pl_errmsg() set.
int pl_trace_dataset(pl_trace_stats *stats, pl_store *s, const pl_model *m, const pl_dataset *d, const pl_trace_opts *o);

#endif
