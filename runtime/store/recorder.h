// Recording activations from the runtime's hooks into a store, off the compute thread.
//
// Hook callbacks convert rows to the storage dtype and append them to a per-hook buffer; a full
// buffer (or the end of a run) becomes a chunk on a bounded queue. A writer thread appends chunks
// to the store's sidecar tensor file with large writes (starting writeback every 8 MiB and dropping
// written-back pages from the page cache, docs/store.md); at the end of a run it fdatasync's the file
// and only then commits, in one SQLite transaction, the run's tokens, labels, tensor index rows and
// status 'complete'. The producer blocks only when the queue holds more than queue_bytes.
#ifndef PL_RECORDER_H
#define PL_RECORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// Finished runs may wait for one group commit (one fdatasync for several runs); a killed writer
// loses at most this many finished runs (they stay incomplete and are redone on resume).
#define PL_RECORDER_GROUP_MAX 64

#include "runtime/hooks.h"
#include "runtime/store/store.h"

typedef struct pl_recorder pl_recorder;

typedef struct {
    const char *record;    // comma-separated hook globs ("blocks.*.hook_resid_post,blocks.*.attn.hook_pattern"); NULL or "" = none
    pl_pos_rule positions; // which positions to keep: ALL, PROMPT, GENERATED/COT (all generated), LAST_PROMPT
    pl_dtype dtype;        // storage dtype
    size_t queue_bytes;    // bound on bytes waiting for the writer (0 = 32 MiB)
    size_t chunk_bytes;    // a hook's buffer becomes a chunk at this size (0 = 256 KiB)
} pl_record_opts;

// A label of a run: text or number.
typedef struct {
    char key[32];
    bool is_text;
    double num;
    char text[128];
} pl_label;

// Start the writer thread on store s (opened with PL_STORE_WRITE; it must outlive the recorder) and
// register callbacks on hooks (which must outlive it too). Fails if a glob matches nothing.
// The caller owns *out and ends it with pl_recorder_close; the hooks must not fire after that (free
// them or detach them from the session). On failure, discard the hooks too.
int pl_recorder_new(pl_recorder **out, pl_store *s, pl_hooks *hooks, const pl_record_opts *o);
// Start a run: its row is committed with status 'running'. n_prompt decides the position rule.
int pl_recorder_begin_run(pl_recorder *r, int64_t model_id, int64_t example_id, const char *params_json, int n_prompt);
// Finish the current run: tokens, labels and the generated text are copied; the commit happens on
// the writer thread. Returns -1 if the writer has failed (disk full, ...), with its message.
int pl_recorder_end_run(pl_recorder *r, const pl_token_row *tokens, int n_tokens, const pl_label *labels, int n_labels,
                        const char *generated_text);
// Drop the current run's buffers and mark it 'aborted' (e.g. on Ctrl-C).
int pl_recorder_abort_run(pl_recorder *r);
// Drain the queue, stop the thread, free everything. Returns -1 if any write failed.
int pl_recorder_close(pl_recorder *r);
// Bytes of tensor data handed to the writer so far.
int64_t pl_recorder_bytes(const pl_recorder *r);
// Runs committed as complete so far.
int pl_recorder_runs_committed(const pl_recorder *r);

#endif
