// pl_run_with_cache: hook callbacks copy each chunk of rows into a full-run array per hook.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/error.h"
#include "runtime/cache.h"
#include "runtime/hooks.h"
#include "runtime/session.h"

typedef struct {
    pl_cache *cache;
    int cap;
    bool oom;
} cache_ctx;

static void on_hook(const pl_hook_event *ev, void *user) {
    cache_ctx *c = user;
    pl_cache *cache = c->cache;
    if (c->oom) return;
    int T = cache->n_tokens;
    pl_cached_hook *b = NULL;
    for (int i = 0; i < cache->n && !b; i++)
        if (strcmp(cache->hooks[i].name, ev->name) == 0) b = &cache->hooks[i];
    bool attention = ev->kind == PL_HOOK_ATTN_SCORES || ev->kind == PL_HOOK_PATTERN;
    if (!b) {
        if (cache->n == c->cap) {
            int cap = c->cap ? 2 * c->cap : 64;
            pl_cached_hook *grown = realloc(cache->hooks, (size_t)cap * sizeof *grown);
            if (!grown) {
                c->oom = true;
                return;
            }
            cache->hooks = grown, c->cap = cap;
        }
        b = &cache->hooks[cache->n];
        memset(b, 0, sizeof *b);
        snprintf(b->name, sizeof b->name, "%s", ev->name);
        b->ndim = ev->ndim;
        memcpy(b->shape, ev->shape, sizeof b->shape);
        size_t total;
        if (attention) {  // [H, n_pos, n_ctx] chunks -> [H, T, T]
            b->shape[1] = b->shape[2] = T;
            total = (size_t)b->shape[0] * T * T;
        } else {          // [n_pos, ...] chunks -> [T, ...]
            b->shape[0] = T;
            total = (size_t)T * ev->row_size;
        }
        b->data = calloc(total, sizeof(float));
        if (!b->data) {
            c->oom = true;
            return;
        }
        if (ev->kind == PL_HOOK_ATTN_SCORES)
            for (size_t i = 0; i < total; i++) b->data[i] = -INFINITY;
        cache->n++;
    }
    if (attention) {
        for (int h = 0; h < ev->shape[0]; h++)
            for (int i = 0; i < ev->n_pos; i++)
                memcpy(b->data + ((size_t)h * T + ev->pos0 + i) * T, ev->data + ((size_t)h * ev->n_pos + i) * ev->n_ctx,
                       sizeof(float) * (size_t)ev->n_ctx);
    } else {
        memcpy(b->data + (size_t)ev->pos0 * ev->row_size, ev->data, sizeof(float) * (size_t)ev->n_pos * ev->row_size);
    }
}

int pl_run_with_cache(const pl_model *m, const int32_t *ids, int n, const char *globs, pl_cache *out) {
    memset(out, 0, sizeof *out);
    if (n < 1) return pl_fail("%s: run_with_cache needs at least one token", m->path);
    out->n_tokens = n;
    cache_ctx c = {.cache = out};
    pl_session *s = NULL;
    pl_hooks *hooks = pl_hooks_new(&m->config);
    int rc = -1;
    if (!hooks) {
        pl_fail("%s: cannot create hooks", m->path);
        goto done;
    }
    if (pl_hooks_add(hooks, globs, on_hook, &c) < 0) goto done;
    if (pl_session_open(&s, m, n) != 0) goto done;
    pl_session_set_hooks(s, hooks);
    const float *logits;
    if (pl_forward(s, ids, n, &logits) != 0) goto done;
    if (c.oom) {
        pl_fail("%s: out of memory caching %d tokens", m->path, n);
        goto done;
    }
    rc = 0;
done:
    pl_session_free(s);
    pl_hooks_free(hooks);
    if (rc != 0) pl_cache_free(out);
    return rc;
}

const pl_cached_hook *pl_cache_get(const pl_cache *c, const char *name) {
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->hooks[i].name, name) == 0) return &c->hooks[i];
    return NULL;
}

void pl_cache_free(pl_cache *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) free(c->hooks[i].data);
    free(c->hooks);
    memset(c, 0, sizeof *c);
}
