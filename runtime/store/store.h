// The trace store: runs, tokens, activations, attention patterns, labels, probes and analyses.
//
// A store is a SQLite database file (S.db, readable with the sqlite3 CLI) plus a sidecar folder
// S.db-tensors/ of append-only tensor files. SQLite holds all metadata and an index of every
// tensor blob (file, offset, shape, dtype); the bytes live in the sidecar files because SQLite blob
// inserts run ~10x slower than plain writes (docs/store.md has the format and the measurements).
// An index row is committed only after its bytes are written and fdatasync'd, so a crash never
// leaves the index pointing at missing data. One writer at a time (a second one gets a clear
// error); any number of readers, also while a writer runs (WAL mode).
//
// A pl_store handle belongs to one thread at a time. Errors: functions return -1, set pl_errmsg()
// and the handle's pl_store_errmsg(), both naming the store file.
#ifndef PL_STORE_H
#define PL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL_STORE_SCHEMA_VERSION 3

typedef struct pl_store pl_store;

typedef enum { PL_STORE_READ = 0, PL_STORE_WRITE = 1 } pl_store_mode;
typedef enum { PL_DTYPE_F32 = 0, PL_DTYPE_F16, PL_DTYPE_BF16 } pl_dtype;

// Open a store. READ needs an existing store (migrations are not run; an older schema is read if
// compatible, a newer one is refused). WRITE creates it if absent, migrates an older schema, marks
// runs left 'running' by a killed writer as 'aborted', and takes the store's writer lock (a second
// writer fails at once with "locked by another writer (pid N)"). The caller owns *out (pl_store_close).
// Returns PL_OK, or a pl_status (runtime/base/error.h: PL_ERR_NOT_FOUND for a missing store read,
// PL_ERR_FORMAT for a file that is not a probelab store or is too new, PL_ERR_IO, ...) with
// pl_errmsg() naming the file.
int pl_store_open(pl_store **out, const char *path, pl_store_mode mode);
void pl_store_close(pl_store *s);
// The last error on this handle ("" if none). Valid until the next call on the handle.
const char *pl_store_errmsg(const pl_store *s);
const char *pl_store_path(const pl_store *s);
int pl_store_schema_version(const pl_store *s);

// "f32" / "f16" / "bf16" <-> pl_dtype; parse returns -1 (pl_errmsg) on an unknown name.
const char *pl_dtype_name(pl_dtype t);
int pl_dtype_parse(const char *name, pl_dtype *out);
size_t pl_dtype_size(pl_dtype t);

// ---- checking a whole store (`probelab store check`) ----------------------------------------

typedef struct {
    int64_t n_findings;   // problems found (all of them)
    char **findings;      // the first n_listed, one line each ("store corrupt: tensors row 17: ...")
    int n_listed;
    int64_t n_runs, n_tokens, n_tensor_rows, n_attention_rows, n_files;  // what was checked
} pl_store_check_report;
// Run every check the readers make, over the whole store: PRAGMA integrity_check and
// foreign_key_check; every runs, tokens, tensors, attention, tensor_files, probes and
// analysis_matrices row against the schema's invariants; every tensor chunk against its sidecar
// file's length, its neighbours and its run. Lists at most max_listed findings. Returns 0 when
// the checks ran (whatever they found; see out->n_findings); the caller frees out with
// pl_store_check_free.
int pl_store_check(pl_store *s, int max_listed, pl_store_check_report *out);
void pl_store_check_free(pl_store_check_report *r);

// ---- metadata (writer handle) --------------------------------------------------------------

// Register a model (deduplicated by sha256, see pl_model_identify); *id receives its row id. `file`
// should be the model's absolute path (commands that reopen the model find it there).
int pl_store_put_model(pl_store *s, const char *name, const char *file, const char *sha256_hex, const char *config_json,
                       int64_t *id);
// Register a dataset file (deduplicated by sha256 of its bytes); *id receives its row id.
int pl_store_put_dataset(pl_store *s, const char *name, const char *file, const char *sha256_hex, int n_examples,
                         int64_t *id);
typedef struct {
    const char *ext_id, *task, *prompt, *cot, *answer;
    const char *const *options;
    int n_options;
    int difficulty;
    const char *meta_json;
} pl_store_example;
// Insert (or find) example number idx of a dataset; *id receives its row id.
int pl_store_put_example(pl_store *s, int64_t dataset_id, int idx, const pl_store_example *e, int64_t *id);
// True in *done if a 'complete' run of (model, example) with exactly these params exists.
int pl_store_run_done(pl_store *s, int64_t model_id, int64_t example_id, const char *params_json, bool *done);

// Transactions for batches of metadata writes (put_example in a loop).
int pl_store_begin(pl_store *s);
int pl_store_commit(pl_store *s);
// Undo an open transaction (after a failed write inside begin/commit); no-op if none is open.
void pl_store_rollback(pl_store *s);

// The example a run was traced from (any handle): strings malloc'd ("" where NULL), options a list
// of n_options strings or NULL; free with pl_stored_example_free. Fails if the run has no example
// or its stored options are not a JSON list of strings.
typedef struct {
    char *ext_id, *task, *prompt, *cot, *answer, *meta_json;
    char **options;
    int n_options;
    int difficulty;
} pl_stored_example;
int pl_store_get_run_example(pl_store *s, int64_t run_id, pl_stored_example *out);
void pl_stored_example_free(pl_stored_example *e);

// ---- models (any handle) -----------------------------------------------------------------------

typedef struct {
    int64_t id;            // as `probelab runs S.db --models` lists it: models in the order first traced
    char name[128];        // the file or folder name
    char path[1024];       // where it was when traced: absolute (older stores may hold it relative)
    char sha256[65];       // pl_model_identify's hash
    int d_model, n_layers; // from the traced config (0 if absent)
    int64_t n_runs;        // runs of this model in the store
} pl_model_info;
// Every model of the store, by id. *models is malloc'd (caller frees; NULL if none).
int pl_store_list_models(pl_store *s, pl_model_info **models, int *n);
// One model; fails with "model N does not exist (models: ...)".
int pl_store_get_model(pl_store *s, int64_t model_id, pl_model_info *out);
// The model a command works on, into *model_id: `requested` (> 0) must exist; 0 picks the store's
// only model (0 if the store has none). A store with several models and none requested fails with
// one line naming them ("holds 2 models (1 a.gguf, 2 b); choose one with --model-id N").
int pl_store_resolve_model(pl_store *s, int64_t requested, int64_t *model_id);
// The file or folder to reopen model `model_id` from (lens, precot steering) into out: `relocated`
// (--model PATH: the model moved or copied elsewhere) if not NULL, else the path recorded when it was
// traced. Its identity (pl_model_identify) must match the store's sha256; a mismatch or a missing
// file fails with one line naming both (and how to relocate).
int pl_store_model_file(pl_store *s, int64_t model_id, const char *relocated, char *out, size_t out_size);

// ---- runs and tokens (any handle) ----------------------------------------------------------

typedef enum { PL_SEG_PROMPT = 0, PL_SEG_COT, PL_SEG_ANSWER } pl_segment;
const char *pl_segment_name(pl_segment seg);

typedef struct {
    int64_t id, model_id, example_id;
    char status[12];      // running | complete | aborted | failed
    char task[32];        // from the example ("" if none)
    int difficulty;
    int n_prompt, n_tokens;  // prompt tokens; all tokens (prompt + generated)
    int correct;          // label 'correct': 1, 0, or -1 if absent
    char answer[64];      // label 'answer' ("" if absent)
    double started, finished;  // unix seconds (finished 0 if not finished)
    char preview[100];    // the start of the example's prompt, newlines and tabs folded to spaces
} pl_run_info;

typedef struct {
    const char *status;   // NULL or "" = any; e.g. "complete"
    const char *task;     // NULL or "" = any
    int64_t model_id;     // 0 = any
    int correct;          // -1 = any, 0 or 1
    const char *text;     // NULL or "" = any; else a substring of the prompt, the generated text or
                          // the gold answer (case-insensitive for ASCII), or exactly a run id
    int limit;            // 0 = no limit
    int offset;           // skip this many matching runs first (paging; with limit)
} pl_run_filter;
pl_run_filter pl_run_filter_any(void);
pl_run_filter pl_run_filter_complete(void);

// Runs matching f, ordered by id (offset and limit page through them). *runs is malloc'd (caller
// frees), *n the count.
int pl_store_list_runs(pl_store *s, const pl_run_filter *f, pl_run_info **runs, int *n);
// One run; fails with "run N does not exist".
int pl_store_get_run(pl_store *s, int64_t run_id, pl_run_info *out);
// Several runs by id into out[n]; a run that does not exist gets out[i].id = -1 (not an error).
// One indexed lookup per id: meant for a page of a browser, not for whole stores.
int pl_store_get_runs(pl_store *s, const int64_t *ids, int n, pl_run_info *out);
// How many runs match f (offset and limit ignored), and how many of them are labelled correct = 1
// and correct = 0 (n_correct / n_incorrect may be NULL). Scans the runs the filter selects.
int pl_store_count_runs(pl_store *s, const pl_run_filter *f, int64_t *n, int64_t *n_correct, int64_t *n_incorrect);
// Ids of the runs matching f, ascending (offset and limit apply), with the same correct/incorrect
// counts over the ids returned (either may be NULL). *ids is malloc'd (caller frees; NULL if *n is 0).
int pl_store_run_ids(pl_store *s, const pl_run_filter *f, int64_t **ids, int64_t *n, int64_t *n_correct,
                     int64_t *n_incorrect);
// The largest run id (0 for a store without runs). One index lookup.
int pl_store_max_run_id(pl_store *s, int64_t *out);
// Task names of all runs ("" for runs without an example), sorted, with their run counts.
// *tasks: malloc'd strings (pl_strings_free), *counts: malloc'd array (caller frees).
int pl_store_list_tasks(pl_store *s, char ***tasks, int64_t **counts, int *n);
// A number that changes whenever another connection (a writer) commits to the store: poll it to
// refresh a view cheaply (SQLite's PRAGMA data_version; it does not read any table).
int pl_store_data_version(pl_store *s, int64_t *out);

#define PL_TOKEN_DISPLAY_SIZE 96
typedef struct {
    int32_t id;
    char piece[48];       // the token's raw bytes (truncated to 47), NUL-terminated: often not valid UTF-8
                          // alone (a byte-level BPE token may hold part of a character)
    char display[PL_TOKEN_DISPLAY_SIZE];  // valid UTF-8 to draw or print: piece with every byte that is not part of a
                          // whole character written as \xNN (pl_utf8_display); filled by readers
    pl_segment segment;
    float logprob;        // log p(token | previous tokens); NAN for the first token
    float entropy;        // entropy (nats) of the distribution it was drawn from; NAN for the first
} pl_token_row;
// Tokens of a run in position order. *tokens is malloc'd (caller frees).
int pl_store_get_tokens(pl_store *s, int64_t run_id, pl_token_row **tokens, int *n);

// Labels: key -> value (text or number). A text value is stored in its display form (valid
// UTF-8, pl_utf8_display: generated answers may hold partial characters). get returns 1 if found,
// 0 if absent, -1 on error; the text form of the value is copied into buf.
int pl_store_put_label(pl_store *s, int64_t run_id, const char *key, const char *text, double num, bool is_text);
int pl_store_get_label(pl_store *s, int64_t run_id, const char *key, char *buf, size_t buf_size);
// All labels of a run, sorted by key, as text: keys[i] = values[i] (pl_strings_free both).
int pl_store_list_labels(pl_store *s, int64_t run_id, char ***keys, char ***values, int *n);
// Every label name any run has, sorted (pl_strings_free).
int pl_store_label_keys(pl_store *s, char ***keys, int *n);
// 0 if some run has label `key`; else -1 with "S.db: no run has a label 'KEY' (labels: ...)".
// Commands that take a label name call it first, so a typo fails instead of giving all -1.
int pl_store_require_label(pl_store *s, const char *key);
// Add or replace labels from a file (writer handle): CSV with a header row, or JSONL with one
// object per line (docs/store.md, "User labels"). Each row names a run by `run` (a run id) or
// every run of an example by `example` (the dataset's example id); the other columns are labels:
// numbers become numbers, other text stays text, an empty cell or null sets nothing. One
// transaction: a bad row ("FILE:LINE: what is wrong") leaves the store unchanged. *n_rows gets
// the rows read, *n_labels the labels written (a row of an example counts once per run).
int pl_store_import_labels(pl_store *s, const char *path, int *n_rows, int *n_labels);

// ---- tensors (any handle) ------------------------------------------------------------------

// Hooks recorded anywhere in the store ("blocks.3.hook_resid_post", ..., attention patterns as
// "blocks.3.attn.hook_pattern"). *names is an array of malloc'd strings; free with pl_strings_free.
int pl_store_list_hooks(pl_store *s, char ***names, int *n);
void pl_strings_free(char **strings, int n);
// Paths of the store's sidecar tensor files (S.db-tensors/NAME), oldest first (pl_strings_free).
int pl_store_tensor_files(pl_store *s, char ***paths, int *n);
// Floats per position of a position-major hook (e.g. d_model for resid_post) in the runs of model
// model_id (0 = any model: the first row recorded; resolve the model first where several may
// differ). Fails naming the hook if it was not recorded, and names the index row if its size is
// not positive (a corrupt store).
int pl_store_hook_row_size(pl_store *s, const char *hook, int64_t model_id, int *row_size);
// Activations of one run at explicit positions: out[n_positions × row_size] as f32 (converted from
// the storage dtype). row_size is the width the caller allocated (pl_store_hook_row_size of the
// run's model): an index row of another width fails naming the row, never writes past out. Reads
// only the rows asked for. Fails clearly if the run does not exist, the hook was not recorded, or a
// position was not recorded for that run.
int pl_store_read_acts(pl_store *s, int64_t run_id, const char *hook, const int32_t *positions, int n_positions,
                       int row_size, float *out);
// Which positions of a run hold rows of this hook: [lo, hi) ranges, *ranges malloc'd as 2*n ints.
int pl_store_recorded_positions(pl_store *s, int64_t run_id, const char *hook, int32_t **ranges, int *n_ranges);

// Layers and heads of a run's recorded attention patterns: n_layers = 1 + the highest recorded
// layer, n_heads = the most heads of any layer; 0, 0 if the run has none. Fails if the run does
// not exist.
int pl_store_attention_shape(pl_store *s, int64_t run_id, int *n_layers, int *n_heads);
// Attention pattern of (run, layer, head): the causal lower triangle. out receives a dense
// [n_q × n_k] row-major matrix (upper triangle zero) for query positions q0..q0+n_q-1 and keys
// 0..n_k-1 (n_k = q0 + n_q); *out is malloc'd (caller frees).
int pl_store_read_attention(pl_store *s, int64_t run_id, int layer, int head, float **out, int *q0, int *n_q,
                            int *n_k);

// ---- position rules and design matrices ----------------------------------------------------

// all | prompt | cot | answer | generated | last-prompt | last-cot | mean-prompt | mean-cot | mean-all
// ("last-*" and "mean-*" give one row per run; the others one row per position in that segment).
typedef enum {
    PL_POS_ALL = 0, PL_POS_PROMPT, PL_POS_COT, PL_POS_ANSWER, PL_POS_GENERATED, PL_POS_LAST_PROMPT, PL_POS_LAST_COT,
    PL_POS_MEAN_PROMPT, PL_POS_MEAN_COT, PL_POS_MEAN_ALL
} pl_pos_rule;
int pl_pos_rule_parse(const char *name, pl_pos_rule *out);
const char *pl_pos_rule_name(pl_pos_rule r);

// Streaming design matrix: one hook and one position rule across the runs matching a filter, all
// of one model (f->model_id, resolved with pl_store_resolve_model: a store of several models needs
// it), so that every row has the width of that model's hook; a row of another width is an error.
typedef struct pl_design pl_design;
// Starts the iteration (nothing is read yet). Fails naming the hook if no run recorded it.
int pl_design_open(pl_design **out, pl_store *s, const char *hook, pl_pos_rule rule, const pl_run_filter *f);
int pl_design_dim(const pl_design *d);
int64_t pl_design_model_id(const pl_design *d);  // the resolved model (0 for a store without models)
int pl_design_n_runs(const pl_design *d);
// Fill up to max_rows rows: X[rows × dim], run_ids[rows], positions[rows] (the position, or -1 for
// mean rules; either array may be NULL). Returns the number filled, 0 at the end, -1 on error.
int pl_design_next(pl_design *d, float *X, int64_t *run_ids, int32_t *positions, int max_rows);
void pl_design_close(pl_design *d);
// The whole matrix at once (malloc'd arrays the caller frees).
int pl_store_design_matrix(pl_store *s, const char *hook, pl_pos_rule rule, const pl_run_filter *f, float **X,
                           int64_t **run_ids, int32_t **positions, int *n_rows, int *dim);

// Export a design matrix for Python. A path ending in .npy writes X there (float32 [n × d]) plus
// <stem>.labels.npy (label `label_key` per row: int32, text values mapped to class ids listed in
// the JSON; float32 if a value is not an integer; -1 / NAN where a run lacks the label),
// <stem>.runs.npy (int32 [n × 2]: run id, position; -1 for mean rules) and <stem>.json (hook,
// rule, shape, label classes, model id). A path ending in .safetensors writes X, labels and runs as tensors
// of one file plus the same JSON sidecar. Returns -1 naming the path.
int pl_store_export(pl_store *s, const char *path, const char *hook, pl_pos_rule rule, const pl_run_filter *f,
                    const char *label_key, int *n_rows, int *dim);

// ---- probes, analyses (writer handle for put, any handle for get) -----------------------------

// A probe: named, for one hook and position rule, with weights [n_weights] (e.g. d + 1 with bias).
int pl_store_put_probe(pl_store *s, const char *name, const char *kind, const char *hook, const char *positions,
                       const char *params_json, const float *weights, int n_weights, int64_t *id);
// A probe's outputs on one run: value[i] at position pos[i] (pos -1 for run-level outputs).
int pl_store_put_probe_outputs(pl_store *s, int64_t probe_id, int64_t run_id, const int32_t *pos, const float *value,
                               int n);
typedef struct {
    int64_t id;
    char name[72], kind[32], hook[96], positions[32];  // truncated to fit; "" where NULL
    int n_weights;
    double created;
    bool has_outputs;  // `probe apply` stored per-token scores for it
} pl_probe_info;
// All probes, oldest first (a name refitted later appears again with a larger id). *probes is
// malloc'd (caller frees; NULL if none). A store of schema 1 has none.
int pl_store_list_probes(pl_store *s, pl_probe_info **probes, int *n);
// The id of the newest probe named `name`: returns 1 and sets *id if there is one, 0 if not, -1 on error.
int pl_store_find_probe(pl_store *s, const char *name, int64_t *id);
// One probe row in full (pl_store_get_probe): strings and weights malloc'd ("" where NULL, weights
// NULL if n_weights is 0); free with pl_stored_probe_free.
typedef struct {
    int64_t id;
    char *name, *kind, *hook, *positions, *params_json;
    float *weights;
    int n_weights;
    double created;
} pl_stored_probe;
// Probe `id` into *out: returns 1 if it exists, 0 if not, -1 on error (a weights blob that is not
// whole floats is corrupt).
int pl_store_get_probe(pl_store *s, int64_t id, pl_stored_probe *out);
void pl_stored_probe_free(pl_stored_probe *p);
// A probe's outputs on one run, ordered by position (run-level outputs, pos -1, first); a NULL
// value reads as NAN. *pos and *value are malloc'd (caller frees both; NULL if *n is 0).
int pl_store_get_probe_outputs(pl_store *s, int64_t probe_id, int64_t run_id, int32_t **pos, float **value, int *n);

// Named result tables for plots: rows of (series, x, y, lo, hi) and small named matrices.
typedef struct {
    const char *series;   // line / group name ("layer 3", "probe acc"); owned by whoever filled it
    double x, y, lo, hi;  // lo/hi: interval (NAN if none)
} pl_analysis_row;
typedef struct {
    char *name, *kind, *params_json;  // malloc'd
    double created;
    pl_analysis_row *rows;            // rows[i].series points into storage owned by the struct
    int n_rows;
    char **matrix_names;              // names of the matrices stored with it
    int n_matrices;
} pl_analysis;
// Create or replace analysis `name` (its rows and matrices) in one transaction.
int pl_store_put_analysis(pl_store *s, const char *name, const char *kind, const char *params_json,
                          const pl_analysis_row *rows, int n_rows);
// Attach a matrix [n_rows × n_cols] (f32) to an existing analysis, replacing one with that name.
int pl_store_put_analysis_matrix(pl_store *s, const char *analysis, const char *matrix, const float *data, int n_rows,
                                 int n_cols);
// Read analysis `name` (rows ordered by series, then x). Fails with "no analysis named X".
int pl_store_get_analysis(pl_store *s, const char *name, pl_analysis *out);
void pl_analysis_free(pl_analysis *a);
// A matrix of an analysis; *data malloc'd (caller frees).
int pl_store_get_analysis_matrix(pl_store *s, const char *analysis, const char *matrix, float **data, int *n_rows,
                                 int *n_cols);
// Names of all analyses, sorted (pl_strings_free). A store of schema 1 has none.
int pl_store_list_analyses(pl_store *s, char ***names, int *n);
// Names and kinds of all analyses, sorted by name (pl_strings_free both).
int pl_store_list_analysis_kinds(pl_store *s, char ***names, char ***kinds, int *n);

#endif
