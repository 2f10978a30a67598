// What every model harness does with a model that loaded: tokenize and decode a few texts, so the
// tokenizer read from the file is exercised too, and run one short forward pass.
#ifndef PL_FUZZ_COMMON_MODEL_H
#define PL_FUZZ_COMMON_MODEL_H

#include <stdlib.h>

#include "runtime/model/model.h"
#include "runtime/session.h"
#include "runtime/tokenizer/tokenizer.h"

static inline void fuzz_exercise_tokenizer(const pl_tokenizer *t) {
    static const char *texts[] = {"", "Q: 12+7=?|A:19\n", "héllo wörld ✓ \xf0\x9f\x98\x80", "\xff\xfe bad utf8 \xc3", "  a  b\t\n"};
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
        int32_t *ids = NULL;
        int n = pl_tokenizer_encode(t, texts[k], k % 2 == 0, &ids);
        if (n > 0) free(pl_tokenizer_decode(t, ids, n));
        free(ids);
    }
    int V = pl_tokenizer_vocab_size(t);
    int32_t ids[64];
    int n = 0;
    for (int i = 0; i < V && n < 64; i += 1 + V / 64) ids[n++] = i;
    free(pl_tokenizer_decode(t, ids, n));
}

static inline void fuzz_exercise_model(const pl_model *m) {
    if (m->tokenizer) fuzz_exercise_tokenizer(m->tokenizer);
    // One forward pass over two tokens, for models small enough to run in a fuzzing loop.
    if (pl_model_n_params(m) > (1 << 22) || m->config.vocab_size < 2) return;
    pl_session *s;
    if (pl_session_open(&s, m, 8) != 0) return;
    const float *logits;
    int32_t ids[2] = {0, 1};
    pl_forward(s, ids, 2, &logits);
    pl_session_free(s);
}

#endif
