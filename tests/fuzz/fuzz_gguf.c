// libFuzzer harness: a GGUF file, parsed, then loaded as a model (config, tensors, tokenizer),
// tokenizing and running one forward pass when it loads.
#include "runtime/model/gguf.h"
#include "tests/fuzz/fuzz_common_model.h"
#include "tests/fuzz/fuzz_support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pl_gguf g;
    pl_gguf_parse(&g, "input.gguf", size ? data : NULL, size);
    pl_gguf_free(&g);  // also after a failure (what was parsed so far)
    const char *path = fuzz_write("input.gguf", data, size);
    pl_model *m;
    if (pl_model_open(&m, path) == 0) {
        fuzz_exercise_model(m);
        pl_model_free(m);
    }
    return 0;
}
