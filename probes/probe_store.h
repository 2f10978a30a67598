// Linear probes over the trace store: gather one (hook, position, label) row per traced run, sweep
// the layers with the probes/linear protocol (group CV, held-out metrics with bootstrap CIs,
// majority / hook_embed / control-task baselines), save probes in the store's probes table, load
// them back, and score every token of runs into probe_outputs for the viewer.
//
// Rows are grouped by example (a run's example id): cross-validation folds, the held-out split and
// the bootstrap never separate two runs of one example. Every read and write goes through
// runtime/store/store.h (pl_store_get_run_example, pl_store_get_model, pl_store_get_probe, ...): no
// SQL here.
#ifndef PL_PROBE_STORE_H
#define PL_PROBE_STORE_H

#include <stdint.h>
#include <stdio.h>

#include "datasets/tasks.h"
#include "probes/linear/evaluate.h"
#include "runtime/store/store.h"

// ---- where in a run a probe reads ------------------------------------------------------------

typedef enum {
    PL_AT_LAST_PROMPT,  // the last prompt token: the last token before the chain of thought
    PL_AT_COT_START,    // the first generated token (position n_prompt)
    PL_AT_ANSWER,       // the token that ends the answer prefix "A:" (its next token is the answer)
    PL_AT_LAST_COT,     // the last token before the answer segment
    PL_AT_TOKEN,        // an absolute position (negative: from the end, -1 = last token)
} pl_at_kind;

typedef struct {
    pl_at_kind kind;
    int token;  // PL_AT_TOKEN only
} pl_probe_at;

// Parse "last-prompt", "cot-start", "answer-prefix" ("answer" is its old name), "last-cot" or "token:N".
// -1 (pl_errmsg) otherwise. The names mean what they mean for every command (docs/store.md).
int pl_probe_at_parse(pl_probe_at *out, const char *text);
// The canonical text of a position rule into buf.
void pl_probe_at_format(char *buf, size_t buf_size, const pl_probe_at *at);
// The position of a run's tokens the rule names into *pos. Returns 0, or -1 with pl_errmsg()
// saying why (no answer prefix, position outside the run).
int pl_probe_at_resolve(int32_t *pos, const pl_probe_at *at, const pl_token_row *tokens, int n_tokens, int n_prompt);

// ---- rows: one per run ----------------------------------------------------------------------

typedef struct {
    const char *label;   // "answer" (the model's own), "gold" (the example's), "correct", or any label key
    pl_probe_at at;
    const char *task;    // NULL = every task
    int64_t model_id;    // 0 = the store's only model (fails if runs of several models match)
    int correct;         // -1 any, 0 or 1: only runs with that 'correct' label
    const char *by_key;  // NULL, or only runs whose value of this key is by_value: "difficulty" (the
    const char *by_value;  // example's), or any run label
} pl_probe_select;

// Metadata fields of a row (pl_probe_rows.meta), the input-only "meta" baseline.
enum { PL_META_PROMPT_LENGTH, PL_META_TASK, PL_META_DIFFICULTY, PL_META_N_OPTIONS, PL_META_FIELDS };

typedef struct {
    int64_t n;              // rows (= runs kept)
    int d;                  // features of the last hook read (0 before pl_probe_rows_read)
    float *x;               // [n × d] activations of the last hook read
    int32_t *y;             // class index into class_names
    int32_t *groups;        // example id (run id for runs without an example)
    int32_t *types;         // control-task type: one id per question template (task + prompt with digits masked)
    uint8_t *is_test;       // held-out split by example (set by pl_probe_train_sweep), or NULL
    int64_t *run_ids;
    int32_t *positions;
    int32_t *prompt_ids;    // the prompt's token ids of row i: prompt_ids[prompt_off[i] .. prompt_off[i+1])
    int64_t *prompt_off;    // [n + 1]
    int32_t *meta;          // [n × PL_META_FIELDS]: prompt length, task index, difficulty, number of options
    int32_t *gold;          // class index of the example's gold answer (-1: none, or not among the classes)
    int8_t *correct;        // the run's 'correct' label: 1, 0, or -1 absent
    char **class_names;     // sorted label texts
    int n_classes;
    int64_t model_id;
    int64_t n_skipped;      // runs dropped: no label, or the position does not exist
    char hook[96];          // the hook x holds
} pl_probe_rows;

// Choose the runs (complete, matching sel), their labels, groups, types, positions, prompt tokens
// and metadata. Nothing is read from the tensor files yet. The caller owns *out (pl_probe_rows_free). Fails (pl_errmsg)
// when no run matches or the label is absent everywhere.
int pl_probe_rows_select(pl_probe_rows *out, pl_store *s, const pl_probe_select *sel);
// Read hook's activations at the chosen positions into r->x (replacing earlier ones). Fails naming
// the hook if it was not recorded, or the run and position if a value is NaN/inf.
int pl_probe_rows_read(pl_probe_rows *r, pl_store *s, const char *hook);
void pl_probe_rows_free(pl_probe_rows *r);

// ---- stored probes --------------------------------------------------------------------------

// What is stored with a probe besides its weights (params JSON of the probes table).
typedef struct {
    int64_t id;
    char name[160];
    char kind[16];           // "binary", "multinomial", "ridge"
    char hook[96];
    char at[32];             // position rule text
    char label[48];
    char task[32];           // "" = all tasks
    int64_t model_id;
    char model_sha256[65];
    char model_name[96];
    int d, n_classes;
    char **class_names;      // [n_classes] in the probe's class order (loaded records), owned by the record
    double lambda;
    pl_probe_metrics metrics;
    double created;
} pl_probe_record;

void pl_probe_record_free(pl_probe_record *r);

// Save p with its record (name, hook, at, label, task, model_id; class_names indexed by the label
// values p->classes holds, as pl_probe_rows gives them; the model's name and sha256 are looked up)
// into the store (writer handle). Weights are stored as one f32 array:
// weights [n_outputs × d], bias [n_outputs], mean [d], std [d]. *id (may be NULL) gets its id.
int pl_probe_save(pl_store *s, const pl_probe *p, const pl_probe_record *rec, int64_t *id);
// Load a probe by id ("12") or by name (the newest of that name). The caller owns *p and *rec.
int pl_probe_load(pl_store *s, const char *ref, pl_probe **p, pl_probe_record *rec);
// Every stored probe's record, oldest first; *recs malloc'd (free each, then the array).
int pl_probe_list_saved(pl_store *s, pl_probe_record **recs, int *n);

// ---- training sweep -------------------------------------------------------------------------

// Controls of a sweep (pl_probe_train_options.controls).
enum {
    PL_CONTROL_INPUT = 1,     // input-only baselines on the same splits (pl_input_kind_name)
    PL_CONTROL_SHUFFLED = 2,  // the same probe on labels shuffled across examples
};
// Parse "input,shuffled" (or "none", "") into *mask. -1 (pl_errmsg naming --controls) otherwise.
int pl_probe_controls_parse(int *mask, const char *text);

// The input-only baselines: "bag" (token counts of the prompt), "positional" (one-hot of
// (position, token)), "embed-mean" (mean of the prompt's hook_embed rows, where recorded at every
// prompt position), "meta" (prompt length, task, difficulty, number of options, one-hot).
enum { PL_INPUT_BAG, PL_INPUT_POSITIONAL, PL_INPUT_EMBED_MEAN, PL_INPUT_META, PL_INPUT_KINDS };
const char *pl_input_kind_name(int kind);

typedef struct {
    int available;            // 0: not computable here (e.g. hook_embed not recorded at the prompt)
    int d;                    // features
    pl_probe_metrics metrics; // over the sweep's splits, like the probes'
} pl_input_baseline;

typedef struct {
    const char *hooks;        // glob over the store's hooks, e.g. "blocks.*.hook_resid_post"
    pl_probe_select sel;
    pl_probe_eval_options eval;
    int embed_baseline;       // 1: the same probe on hook_embed (if recorded)
    int control_task;         // 1: Hewitt & Liang control labels per question type (see pl_probe_rows.types)
    const char *name_prefix;  // stored names are "<prefix><label>@<at>/<hook>"; NULL = ""
    int save;                 // 1: store every probe (writer handle)
    int n_splits;             // repeated held-out group splits (default 5; seeds eval.seed + s)
    int controls;             // PL_CONTROL_* mask (default 0)
} pl_probe_train_options;

pl_probe_train_options pl_probe_train_defaults(void);

typedef struct {
    char hook[96];
    int layer;               // -1 for global hooks (hook_embed)
    pl_probe *probe;         // owned; fitted on split 0, metrics over all splits
    pl_probe *shuffled;      // owned, PL_CONTROL_SHUFFLED: fitted on every row's shuffled label with
                             // the probe's lambda (same classes as probe; the steering control)
    pl_cv_result cv;         // split 0's lambda grid (its training rows only: layer selection uses it)
    int64_t probe_id;        // 0 if not saved
    double mean_norm;        // mean L2 norm of the rows (for steering scales)
} pl_probe_layer;

typedef struct {
    pl_probe_layer *layers;  // one per matched hook, in layer order
    int n_layers;
    pl_probe_layer embed;    // valid if has_embed
    int has_embed;
    pl_probe_rows rows;      // the rows (x holds the last hook read)
    int n_splits;
    uint8_t *is_test;        // [n_splits × rows.n]: the held-out rows of each split (split 0 = rows.is_test)
    pl_input_baseline inputs[PL_INPUT_KINDS];  // with PL_CONTROL_INPUT
    int best_input;          // the strongest available input baseline by mean AUROC, -1 none
} pl_probe_sweep;

// Fit one probe per hook matching o->hooks (layer order) on the selected rows and evaluate it on
// o->n_splits held-out group splits (lambda by CV inside each split's training rows), with the
// controls asked for on the same splits. Bad input fails with a one-line pl_errmsg(): no hook
// matches, a single class, fewer examples than folds, NaN/inf activations. The caller owns *out (pl_probe_sweep_free).
int pl_probe_train_sweep(pl_probe_sweep *out, pl_store *s, const pl_probe_train_options *o);
void pl_probe_sweep_free(pl_probe_sweep *sw);

// ---- applying -------------------------------------------------------------------------------

// Score every recorded token of the given runs with a stored probe and store the scores in
// probe_outputs (writer handle): the probability of class `class_name` (NULL: the class of the
// run's own label if the probe knows it, else the positive class for binary probes and the top
// class otherwise). hook (NULL = the probe's) must equal the probe's hook. model_id: the runs'
// model (0 = the store's only model; pl_store_resolve_model), which must be the probe's; run_ids
// NULL = every complete run of it. *n_scored and *n_runs_scored (either may be NULL) receive the
// number of values stored and of runs scored.
int pl_probe_apply(pl_store *s, const char *ref, int64_t model_id, const int64_t *run_ids, int n_runs, const char *hook,
                   const char *class_name, int64_t *n_scored, int *n_runs_scored);

// ---- a run's example ---------------------------------------------------------------------------

// The example of a run as a pl_example (pl_store_get_run_example; fields malloc'd,
// pl_example_free_fields). Fails if the run has no example.
int pl_probe_run_example(pl_store *s, int64_t run_id, pl_example *out);

#endif
