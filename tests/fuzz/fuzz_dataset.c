// libFuzzer harness: a dataset file in every format, then the CoT checker on each example. The
// first byte picks the format (auto, probelab, mc, gsm8k, locomo), the extension (.jsonl/.json)
// and skip-bad; the rest is the file, optionally followed by "\n#generated#\n" and a model
// continuation to check against every example (the reference continuation is checked too).
#include <stdbool.h>

#include "datasets/tasks.h"
#include "tests/fuzz/fuzz_support.h"

static void check(const pl_example *e, const char *generated) {
    pl_cot_check c;
    if (pl_check_cot(&c, e, generated) == 0) pl_cot_class_name(pl_cot_classify(&c));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const pl_format formats[] = {PL_FORMAT_AUTO, PL_FORMAT_PROBELAB, PL_FORMAT_MC, PL_FORMAT_GSM8K, PL_FORMAT_LOCOMO};
    uint8_t how = data[0];
    size_t file_size, gen_size;
    const uint8_t *gen;
    fuzz_split(data + 1, size - 1, "\n#generated#\n", &file_size, &gen, &gen_size);
    const char *path = fuzz_write(how & 0x08 ? "d.json" : "d.jsonl", data + 1, file_size);
    char *generated = malloc(gen_size + 1);
    if (!generated) return 0;
    memcpy(generated, gen, gen_size);
    generated[gen_size] = '\0';
    pl_dataset d;
    int n_skipped = 0;
    if (pl_dataset_load_as(&d, path, formats[how % 5], (how & 0x40) != 0, &n_skipped) == 0) {
        for (int i = 0; i < d.n; i++) {
            char *full = pl_example_full_text(&d.items[i]);
            size_t np = d.items[i].prompt ? strlen(d.items[i].prompt) : 0;
            if (full) check(&d.items[i], strlen(full) >= np ? full + np : full);
            free(full);
            if (gen_size) check(&d.items[i], generated);
        }
        pl_dataset_free(&d);
    }
    free(generated);
    return 0;
}
