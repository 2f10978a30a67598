// pl_trace_check_cot: the built-in tasks' answer checker (datasets/cot_check.c) as run labels.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "runtime/base/error.h"

#include "runtime/trace/trace.h"

static void add_text(pl_label *l, int *n, int max, const char *key, const char *text) {
    if (*n >= max) return;
    pl_label *x = &l[(*n)++];
    memset(x, 0, sizeof *x);
    snprintf(x->key, sizeof x->key, "%s", key);
    x->is_text = true;
    snprintf(x->text, sizeof x->text, "%s", text ? text : "");
}

static void add_num(pl_label *l, int *n, int max, const char *key, double v) {
    if (*n >= max) return;
    pl_label *x = &l[(*n)++];
    memset(x, 0, sizeof *x);
    snprintf(x->key, sizeof x->key, "%s", key);
    x->num = v;
}

int pl_trace_check_cot(pl_label *labels, int max, const pl_example *e, const char *generated, void *user) {
    (void)user;
    pl_cot_check c;
    if (pl_check_cot(&c, e, generated) != 0) return -1;
    int n = 0;
    if (c.has_answer) add_text(labels, &n, max, "answer", c.answer);
    add_text(labels, &n, max, "gold", e->answer);
    add_num(labels, &n, max, "has_answer", c.has_answer);
    add_num(labels, &n, max, "correct", c.correct);
    if (c.steps_checked) {
        add_num(labels, &n, max, "steps_valid", c.steps_valid);
        add_num(labels, &n, max, "entailed", c.entailed);
        add_num(labels, &n, max, "n_valid_steps", c.n_valid_steps);
    }
    add_num(labels, &n, max, "n_steps", c.n_steps);
    add_text(labels, &n, max, "class", pl_cot_class_name(pl_cot_classify(&c)));
    return n;
}

static bool has_key(const pl_label *l, int n, const char *key) {
    for (int i = 0; i < n; i++)
        if (strcmp(l[i].key, key) == 0) return true;
    return false;
}

int pl_trace_meta_labels(pl_label **labels, int *n, const char *meta_json) {
    if (!meta_json || !meta_json[0]) return 0;
    json_t *meta = json_loads(meta_json, 0, NULL);
    if (!json_is_object(meta)) {
        json_decref(meta);
        return 0;  // the loaders always write an object; anything else carries no labels
    }
    pl_label *grown = realloc(*labels, sizeof **labels * (size_t)(*n + (int)json_object_size(meta) + 1));
    if (!grown) {
        json_decref(meta);
        return pl_fail("out of memory for labels");
    }
    *labels = grown;
    int n0 = *n;
    const char *key;
    json_t *v;
    json_object_foreach(meta, key, v) {
        pl_label x = {0};
        if (json_is_string(v)) {
            if (strlen(json_string_value(v)) >= sizeof x.text) continue;  // long text stays in examples.meta
            x.is_text = true;
            snprintf(x.text, sizeof x.text, "%s", json_string_value(v));
        } else if (json_is_number(v)) {
            x.num = json_number_value(v);
        } else if (json_is_boolean(v)) {
            x.num = json_is_true(v);
        } else {
            continue;  // null, lists and objects stay in examples.meta
        }
        // A key that a computed label already uses (arith's meta n_steps vs the checked n_steps)
        // keeps its value under meta.KEY.
        char name[sizeof x.key + 8];
        snprintf(name, sizeof name, "%s", key);
        if (has_key(*labels, n0, name)) snprintf(name, sizeof name, "meta.%s", key);
        size_t len = strlen(name);
        if (len >= sizeof x.key || has_key(*labels, *n, name)) continue;
        memcpy(x.key, name, len + 1);
        (*labels)[(*n)++] = x;
    }
    json_decref(meta);
    return 0;
}
