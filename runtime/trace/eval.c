// pl_trace_eval: the generate-and-check loop of trace without a store (`probelab train eval`).
#include <stdlib.h>
#include <string.h>

#include "runtime/base/error.h"
#include "runtime/trace/trace.h"

static const pl_label *find_label(const pl_label *l, int n, const char *key) {
    for (int i = 0; i < n; i++)
        if (strcmp(l[i].key, key) == 0) return &l[i];
    return NULL;
}

int pl_trace_eval(pl_trace_tally *out, pl_session *sess, const pl_tokenizer *tok, const pl_dataset *d,
                  const pl_trace_step_opts *o) {
    memset(out, 0, sizeof *out);
    int max_ctx = pl_session_max_ctx(sess);
    for (int i = 0; i < d->n; i++) {
        const pl_example *e = &d->items[i];
        int32_t *ids;
        int n_prompt = pl_trace_encode(tok, e, i, max_ctx, &ids);
        if (n_prompt < 0) return -1;
        if (n_prompt == 0) {
            out->n_unfit++;
            continue;
        }
        pl_trace_step_opts so = *o;
        if (so.sampling.max_new <= 0) so.sampling.max_new = max_ctx - n_prompt;
        pl_trace_step step;
        int rc = pl_trace_generate(&step, sess, tok, e, ids, n_prompt, &so);
        free(ids);
        if (rc != 0) return pl_trace_fail_example(i, e);
        pl_label labels[32];
        int n_labels = pl_trace_check_cot(labels, 32, e, step.text, NULL);
        pl_trace_step_free(&step);
        if (n_labels < 0) return -1;
        const pl_label *correct = find_label(labels, n_labels, "correct");
        const pl_label *valid = find_label(labels, n_labels, "steps_valid");
        const pl_label *cls = find_label(labels, n_labels, "class");
        out->n++;
        out->correct += correct && correct->num == 1;
        out->steps_checked += valid != NULL;
        out->steps_valid += valid && valid->num == 1;
        out->sound += cls && strcmp(cls->text, "sound") == 0;
    }
    return 0;
}
