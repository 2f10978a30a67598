// run_with_cache (TransformerLens's name): one forward pass over a prompt, with every hook point
// matching a glob captured into one full-run array. The forward pass may fire a hook in several
// chunks of positions; the cache assembles them.
#ifndef PL_CACHE_H
#define PL_CACHE_H

#include <stdint.h>

#include "runtime/model/model.h"

typedef struct {
    char name[96];     // hook name, e.g. "blocks.0.hook_resid_post"
    int ndim;
    int64_t shape[4];  // full-run shape: [T, d] residual-like, [T, H, dh] q/k/v/z, [H, T, T] attention
                       // scores and pattern (masked scores are -inf, masked pattern entries 0), [T, V] logits
    float *data;       // row-major, shape[0] * ... * shape[ndim-1] floats
} pl_cached_hook;

typedef struct {
    pl_cached_hook *hooks;  // in the order the forward pass fired them
    int n;
    int n_tokens;
} pl_cache;

// Run tokens ids[0..n-1] through m from position 0 and cache every hook point matching globs
// (comma-separated fnmatch patterns; '*' = every point). Fills *out (pl_cache_free); returns 0, or
// -1 (pl_errmsg) on a bad glob, a bad token id, a prompt longer than the context or out of memory.
int pl_run_with_cache(const pl_model *m, const int32_t *ids, int n, const char *globs, pl_cache *out);
// The cached hook called name, or NULL.
const pl_cached_hook *pl_cache_get(const pl_cache *c, const char *name);
void pl_cache_free(pl_cache *c);

#endif
