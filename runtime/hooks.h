// Hook points: named places in the forward pass where activations can be read or written.
// Names follow TransformerLens ("blocks.3.hook_resid_post", "blocks.0.attn.hook_pattern"); see
// docs/hooks.md. Callbacks are registered by glob and see [positions × dims] during prefill and at
// every decode step, so generated tokens are covered. A callback may modify ev->data in place:
// the forward pass continues from the modified values (ablation, steering, patching).
// A forward pass with no hooks registered only tests one pointer per hook point.
#ifndef PL_HOOKS_H
#define PL_HOOKS_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/model/model.h"

typedef enum {
    // global, before the blocks
    PL_HOOK_EMBED,
    PL_HOOK_POS_EMBED,  // gpt2 only
    // per block
    PL_HOOK_RESID_PRE,
    PL_HOOK_LN1_OUT,
    PL_HOOK_Q,
    PL_HOOK_K,
    PL_HOOK_V,
    PL_HOOK_ROT_Q,
    PL_HOOK_ROT_K,
    PL_HOOK_ATTN_SCORES,
    PL_HOOK_PATTERN,
    PL_HOOK_Z,
    PL_HOOK_ATTN_OUT,
    PL_HOOK_RESID_MID,
    PL_HOOK_LN2_OUT,
    PL_HOOK_MLP_PRE,
    PL_HOOK_MLP_PRE_LINEAR,  // gated MLPs only (up projection)
    PL_HOOK_MLP_POST,
    PL_HOOK_MLP_OUT,
    PL_HOOK_RESID_POST,
    // global, after the blocks
    PL_HOOK_LN_FINAL,
    PL_HOOK_LOGITS,
    PL_HOOK_KIND_COUNT
} pl_hook_kind;

// What a callback sees. Position-major hooks have shape [n_pos, ...]; attention scores and
// patterns have shape [H, n_pos, n_ctx] (rows = query positions pos0.., columns = keys 0..n_ctx-1).
typedef struct {
    const char *name;     // "blocks.2.hook_resid_post"
    pl_hook_kind kind;
    int layer;            // -1 for global hooks
    int pos0;             // absolute position of the first row
    int n_pos;            // number of query positions in this call (T in prefill, 1 in decode)
    int n_ctx;            // keys visible = pos0 + n_pos
    int ndim;
    int64_t shape[4];
    int row_size;         // floats per position for position-major hooks (product of shape[1:])
    float *data;          // writable
} pl_hook_event;

typedef void (*pl_hook_fn)(const pl_hook_event *ev, void *user);

typedef struct pl_hooks pl_hooks;

// A hook set for one model config (hook names depend on layers and architecture).
pl_hooks *pl_hooks_new(const pl_config *cfg);
void pl_hooks_free(pl_hooks *h);
// Register fn at every hook point whose name matches the glob (fnmatch) pattern, or a comma-
// separated list of globs. Returns the number of points matched; 0 matched is an error (-1,
// pl_errmsg lists the pattern).
int pl_hooks_add(pl_hooks *h, const char *pattern, pl_hook_fn fn, void *user);
// True if any callback is registered at this point (the forward pass's only per-point cost).
bool pl_hooks_active(const pl_hooks *h, pl_hook_kind kind, int layer);
// Call the callbacks registered at a point.
void pl_hooks_fire(const pl_hooks *h, pl_hook_event *ev);

// Names: every hook point of a config, in forward order. Returns the count; names[i] is owned by h.
int pl_hooks_list(const pl_hooks *h, const char ***names);
// Format the name of a point into buf.
void pl_hook_name(pl_hook_kind kind, int layer, char *buf, int buf_size);
// Parse a name; returns 0 and fills kind/layer, or -1 if it is not a hook name.
int pl_hook_parse(const char *name, pl_hook_kind *kind, int *layer);
// Does this architecture have this hook kind?
bool pl_hook_exists(const pl_config *cfg, pl_hook_kind kind);

// ---- built-in edits (a pl_hook_fn with a pl_edit as user data) ----
typedef enum { PL_EDIT_ZERO, PL_EDIT_MEAN, PL_EDIT_ADD, PL_EDIT_REPLACE } pl_edit_op;
typedef struct {
    pl_edit_op op;
    int pos_lo, pos_hi;   // absolute positions [lo, hi) to edit; hi < 0 means "to the end"
    const float *vector;  // MEAN: the mean row to write; ADD: the direction (row_size floats)
    float alpha;          // ADD: x += alpha * vector
    const float *rows;    // REPLACE: rows for positions pos_lo.. (row_size floats each)
    int n_rows;           // REPLACE: how many rows `rows` holds
} pl_edit;
// Applies *(pl_edit *)user to the positions it covers. For attention scores/patterns only
// ZERO is meaningful (it zeroes the covered query rows).
void pl_hook_edit(const pl_hook_event *ev, void *user);

#endif
