// pl_trace_check_cot: the built-in tasks' answer checker (datasets/cot_check.c) as run labels.
#include <stdio.h>
#include <string.h>

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
