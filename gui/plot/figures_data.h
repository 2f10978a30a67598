// Read-only access to a trace store for figures and the viewer: per-token score sources, attention
// matrices and analyses in the shapes the drawing code wants. Runs and tokens are read with the
// store API itself (runtime/store/store.h) through pl_vstore_store(); gui never writes a store.
//
// A pl_vstore wraps a pl_store opened read-only. Like pl_store it belongs to one thread at a time:
// the viewer opens one per worker thread. Errors return -1 after pl_fail() with a message naming
// the store file.
#ifndef PL_FIGURES_DATA_H
#define PL_FIGURES_DATA_H

#include <stdint.h>

#include "runtime/store/store.h"

typedef struct pl_vstore pl_vstore;

// Open `path` read-only. Fails (-1, pl_errmsg) on a missing file, a file that is not a store and a
// store with a newer schema. An empty store opens fine (pl_vstore_max_run_id gives 0). The caller
// owns *out and frees it with pl_vstore_close().
int pl_vstore_open(pl_vstore **out, const char *path);
void pl_vstore_close(pl_vstore *v);
const char *pl_vstore_path(const pl_vstore *v);

// Cheap change detection: SQLite's data_version (changes when another connection commits) and
// the largest run id (0 for an empty store). Neither scans a table.
int pl_vstore_data_version(pl_vstore *v, int64_t *out);
int pl_vstore_max_run_id(pl_vstore *v, int64_t *out);

// The read-only store handle: runs (pl_store_run_ids, pl_store_get_runs, pl_store_get_run,
// pl_store_list_tasks, pl_store_resolve_model) and tokens (pl_store_get_tokens). Owned by v.
pl_store *pl_vstore_store(pl_vstore *v);

// ---- tokens and scores ----

// A per-token score that tokens can be coloured by. Sources come from a registry of providers:
// built-in logprob and entropy, one source per probe in the store ("probe:NAME"); later modules
// (Gnosis, theater) add providers in figures_data.c's table without touching the viewer.
// How a score's values map to colours.
typedef enum {
    PL_SCORE_SEQUENTIAL = 0,   // viridis over the run's min..max (logprob, entropy)
    PL_SCORE_SIGNED = 1,       // diverging, symmetric around 0 (ridge probe outputs, signed scores)
    PL_SCORE_PROBABILITY = 2,  // diverging over the fixed range 0..1, white at 0.5 (classifier probes)
} pl_score_scale;

typedef struct {
    char name[80];    // stable key, e.g. "logprob", "probe:cot_correct"
    char title[96];   // for menus and figure titles
    char unit[48];    // colour-bar label: what the value is ("p(class)", "log-probability (nats)")
    int diverging;    // 1: colour with the diverging map (SIGNED or PROBABILITY); 0: sequential
    pl_score_scale scale;
} pl_vscore_source;
// Score sources this store offers; *out malloc'd (caller frees).
int pl_vstore_score_sources(pl_vstore *v, pl_vscore_source **out, int *n);
// Scores of source `name` for the n_tokens positions of a run into out[n_tokens] (NaN where the
// source has no value). Fails naming the source if it is unknown.
int pl_vstore_token_scores(pl_vstore *v, const char *name, int64_t run_id, float *out, int n_tokens);

// ---- attention ----

// Layers and heads with recorded attention patterns for a run (0, 0 if none).
int pl_vstore_attention_shape(pl_vstore *v, int64_t run_id, int *n_layers, int *n_heads);
// Attention of (run, layer, head) as a dense [n × n] matrix (query rows, key columns) over the
// positions 0..n-1; cells above the diagonal and rows that were not recorded are NaN. *out malloc'd.
int pl_vstore_attention(pl_vstore *v, int64_t run_id, int layer, int head, float **out, int *n);

// ---- analyses ----

typedef struct {
    char *name, *kind;  // malloc'd
    char *params_json;  // malloc'd, "{}" when the analysis has none (drawing hints: docs/viewer.md)
    int n_rows;
    char **series;      // (n_rows) malloc'd strings
    double *x, *y, *lo, *hi;  // (n_rows), ordered by series then x; lo/hi NaN if absent
    int n_matrices;
    char **matrix_names;
} pl_vanalysis;
// Names and kinds of all analyses (arrays of malloc'd strings; free both with pl_vstore_free_strings).
int pl_vstore_analyses(pl_vstore *v, char ***names, char ***kinds, int *n);
void pl_vstore_free_strings(char **strings, int n);
// Read one analysis (fails with "no analysis named X"); free with pl_vanalysis_free.
int pl_vstore_analysis(pl_vstore *v, const char *name, pl_vanalysis *out);
void pl_vanalysis_free(pl_vanalysis *a);
// A matrix of an analysis: *data [n_rows × n_cols] malloc'd (caller frees).
int pl_vstore_analysis_matrix(pl_vstore *v, const char *analysis, const char *matrix, float **data, int *n_rows,
                              int *n_cols);

#endif
