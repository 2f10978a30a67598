// libFuzzer harness: a Hugging Face folder. The input is config.json, then the line
// "\n#safetensors#\n", then model.safetensors (absent without the separator).
#include <sys/stat.h>

#include "tests/fuzz/fuzz_common_model.h"
#include "tests/fuzz/fuzz_support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t config_size, st_size;
    const uint8_t *st;
    fuzz_split(data, size, "\n#safetensors#\n", &config_size, &st, &st_size);
    char dir[128];
    snprintf(dir, sizeof dir, "%s/hf", fuzz_dir());
    mkdir(dir, 0777);
    fuzz_write("hf/config.json", data, config_size);
    char st_path[160];
    snprintf(st_path, sizeof st_path, "%s/model.safetensors", dir);
    if (st_size) fuzz_write("hf/model.safetensors", st, st_size);
    else unlink(st_path);
    pl_model *m;
    if (pl_model_open(&m, dir) == 0) {
        fuzz_exercise_model(m);
        pl_model_free(m);
    }
    return 0;
}
