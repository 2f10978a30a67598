// libFuzzer harness: a tokenizer.json, loaded, then encoding and decoding texts with it.
#include "tests/fuzz/fuzz_common_model.h"
#include "tests/fuzz/fuzz_support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write("tokenizer.json", data, size);
    pl_tokenizer *t = pl_tokenizer_load_hf_json(path);
    if (t) {
        fuzz_exercise_tokenizer(t);
        pl_tokenizer_free(t);
    }
    return 0;
}
