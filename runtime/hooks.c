#include "runtime/hooks.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/error.h"

static const char *const kind_suffix[PL_HOOK_KIND_COUNT] = {
    [PL_HOOK_EMBED] = "hook_embed",
    [PL_HOOK_POS_EMBED] = "hook_pos_embed",
    [PL_HOOK_RESID_PRE] = "hook_resid_pre",
    [PL_HOOK_LN1_OUT] = "ln1.hook_out",
    [PL_HOOK_Q] = "attn.hook_q",
    [PL_HOOK_K] = "attn.hook_k",
    [PL_HOOK_V] = "attn.hook_v",
    [PL_HOOK_ROT_Q] = "attn.hook_rot_q",
    [PL_HOOK_ROT_K] = "attn.hook_rot_k",
    [PL_HOOK_ATTN_SCORES] = "attn.hook_attn_scores",
    [PL_HOOK_PATTERN] = "attn.hook_pattern",
    [PL_HOOK_Z] = "attn.hook_z",
    [PL_HOOK_ATTN_OUT] = "hook_attn_out",
    [PL_HOOK_RESID_MID] = "hook_resid_mid",
    [PL_HOOK_LN2_OUT] = "ln2.hook_out",
    [PL_HOOK_MLP_PRE] = "mlp.hook_pre",
    [PL_HOOK_MLP_PRE_LINEAR] = "mlp.hook_pre_linear",
    [PL_HOOK_MLP_POST] = "mlp.hook_post",
    [PL_HOOK_MLP_OUT] = "hook_mlp_out",
    [PL_HOOK_RESID_POST] = "hook_resid_post",
    [PL_HOOK_LN_FINAL] = "ln_final.hook_out",
    [PL_HOOK_LOGITS] = "logits",
};

#define N_LAYER_KINDS (PL_HOOK_LN_FINAL - PL_HOOK_RESID_PRE)

typedef struct {
    pl_hook_fn fn;
    void *user;
} hook_callback;

typedef struct {
    hook_callback *callbacks;
    int n;
} hook_point;

struct pl_hooks {
    pl_config cfg;
    int n_points;
    hook_point *points;
    char **names;         // per point index ("" where the architecture lacks the point)
    const char **listed;  // existing names in forward order
    int n_listed;
};

static bool is_layer_kind(pl_hook_kind k) { return k >= PL_HOOK_RESID_PRE && k < PL_HOOK_LN_FINAL; }

static int point_index(const pl_hooks *h, pl_hook_kind kind, int layer) {
    if (kind < PL_HOOK_RESID_PRE) return (int)kind;
    if (is_layer_kind(kind)) return 2 + layer * N_LAYER_KINDS + (int)(kind - PL_HOOK_RESID_PRE);
    return 2 + h->cfg.n_layers * N_LAYER_KINDS + (int)(kind - PL_HOOK_LN_FINAL);
}

bool pl_hook_exists(const pl_config *cfg, pl_hook_kind kind) {
    bool gpt2 = cfg->arch == PL_ARCH_GPT2;
    switch (kind) {
    case PL_HOOK_POS_EMBED: return gpt2;
    case PL_HOOK_ROT_Q:
    case PL_HOOK_ROT_K: return cfg->rope_style != PL_ROPE_NONE;
    case PL_HOOK_MLP_PRE_LINEAR: return !gpt2;
    default: return kind >= 0 && kind < PL_HOOK_KIND_COUNT;
    }
}

void pl_hook_name(pl_hook_kind kind, int layer, char *buf, int buf_size) {
    if (is_layer_kind(kind)) snprintf(buf, (size_t)buf_size, "blocks.%d.%s", layer, kind_suffix[kind]);
    else snprintf(buf, (size_t)buf_size, "%s", kind_suffix[kind]);
}

int pl_hook_parse(const char *name, pl_hook_kind *kind, int *layer) {
    int l = -1;
    const char *suffix = name;
    if (strncmp(name, "blocks.", 7) == 0) {
        char *end;
        long v = strtol(name + 7, &end, 10);
        if (end == name + 7 || *end != '.' || v < 0 || v > 100000) return -1;
        l = (int)v;
        suffix = end + 1;
    }
    for (int k = 0; k < PL_HOOK_KIND_COUNT; k++) {
        if (strcmp(suffix, kind_suffix[k]) != 0) continue;
        if (is_layer_kind((pl_hook_kind)k) != (l >= 0)) return -1;
        *kind = (pl_hook_kind)k;
        *layer = l;
        return 0;
    }
    return -1;
}

pl_hooks *pl_hooks_new(const pl_config *cfg) {
    pl_hooks *h = calloc(1, sizeof *h);
    h->cfg = *cfg;
    h->n_points = 2 + cfg->n_layers * N_LAYER_KINDS + 2;
    h->points = calloc((size_t)h->n_points, sizeof *h->points);
    h->names = calloc((size_t)h->n_points, sizeof *h->names);
    h->listed = calloc((size_t)h->n_points, sizeof *h->listed);
    char buf[96];
    // forward order: globals before, blocks, globals after
    for (int k = 0; k < PL_HOOK_KIND_COUNT; k++) {
        pl_hook_kind kind = (pl_hook_kind)k;
        if (is_layer_kind(kind)) continue;
        pl_hook_name(kind, -1, buf, sizeof buf);
        h->names[point_index(h, kind, -1)] = strdup(pl_hook_exists(cfg, kind) ? buf : "");
    }
    for (int l = 0; l < cfg->n_layers; l++)
        for (int k = PL_HOOK_RESID_PRE; k < PL_HOOK_LN_FINAL; k++) {
            pl_hook_name((pl_hook_kind)k, l, buf, sizeof buf);
            h->names[point_index(h, (pl_hook_kind)k, l)] = strdup(pl_hook_exists(cfg, (pl_hook_kind)k) ? buf : "");
        }
    for (int i = 0; i < h->n_points; i++)
        if (h->names[i][0]) h->listed[h->n_listed++] = h->names[i];
    return h;
}

void pl_hooks_free(pl_hooks *h) {
    if (!h) return;
    for (int i = 0; i < h->n_points; i++) {
        free(h->points[i].callbacks);
        free(h->names[i]);
    }
    free(h->points);
    free(h->names);
    free(h->listed);
    free(h);
}

int pl_hooks_add(pl_hooks *h, const char *pattern, pl_hook_fn fn, void *user) {
    int matched = 0;
    char *patterns = strdup(pattern), *save = NULL;
    for (char *pat = strtok_r(patterns, ",", &save); pat; pat = strtok_r(NULL, ",", &save)) {
        while (*pat == ' ') pat++;
        int matched_this = 0;
        for (int i = 0; i < h->n_points; i++) {
            if (!h->names[i][0] || fnmatch(pat, h->names[i], 0) != 0) continue;
            hook_point *p = &h->points[i];
            p->callbacks = realloc(p->callbacks, (size_t)(p->n + 1) * sizeof *p->callbacks);
            p->callbacks[p->n++] = (hook_callback){fn, user};
            matched_this++;
        }
        if (matched_this == 0) {
            pl_fail("hook pattern '%s' matches no hook point of this model (e.g. 'blocks.*.hook_resid_post'; "
                    "`probelab info MODEL --hooks` lists them)", pat);
            free(patterns);
            return -1;
        }
        matched += matched_this;
    }
    free(patterns);
    if (matched == 0) return pl_fail("hook pattern '%s' is empty", pattern);
    return matched;
}

bool pl_hooks_active(const pl_hooks *h, pl_hook_kind kind, int layer) {
    return h && h->points[point_index(h, kind, layer)].n > 0;
}

void pl_hooks_fire(const pl_hooks *h, pl_hook_event *ev) {
    int idx = point_index(h, ev->kind, ev->layer);
    const hook_point *p = &h->points[idx];
    ev->name = h->names[idx];
    for (int i = 0; i < p->n; i++) p->callbacks[i].fn(ev, p->callbacks[i].user);
}

int pl_hooks_list(const pl_hooks *h, const char ***names) {
    *names = h->listed;
    return h->n_listed;
}

void pl_hook_edit(const pl_hook_event *ev, void *user) {
    const pl_edit *e = user;
    int lo = e->pos_lo > ev->pos0 ? e->pos_lo : ev->pos0;
    int hi = ev->pos0 + ev->n_pos;
    if (e->pos_hi >= 0 && e->pos_hi < hi) hi = e->pos_hi;
    if (lo >= hi) return;
    bool attention = ev->kind == PL_HOOK_ATTN_SCORES || ev->kind == PL_HOOK_PATTERN;
    if (attention) {
        if (e->op != PL_EDIT_ZERO) return;
        int n_heads = (int)ev->shape[0];
        for (int hd = 0; hd < n_heads; hd++)
            for (int p = lo; p < hi; p++)
                memset(ev->data + ((size_t)hd * ev->n_pos + (size_t)(p - ev->pos0)) * ev->n_ctx, 0,
                       sizeof(float) * (size_t)ev->n_ctx);
        return;
    }
    for (int p = lo; p < hi; p++) {
        float *row = ev->data + (size_t)(p - ev->pos0) * ev->row_size;
        switch (e->op) {
        case PL_EDIT_ZERO: memset(row, 0, sizeof(float) * (size_t)ev->row_size); break;
        case PL_EDIT_MEAN: memcpy(row, e->vector, sizeof(float) * (size_t)ev->row_size); break;
        case PL_EDIT_ADD:
            for (int j = 0; j < ev->row_size; j++) row[j] += e->alpha * e->vector[j];
            break;
        case PL_EDIT_REPLACE:
            if (p - e->pos_lo < e->n_rows)
                memcpy(row, e->rows + (size_t)(p - e->pos_lo) * ev->row_size, sizeof(float) * (size_t)ev->row_size);
            break;
        }
    }
}
