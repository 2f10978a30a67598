// A tiny random-weight Hugging Face llama folder for tests that need a model folder (not a GGUF):
// config.json, model.safetensors (F32) and a byte-level BPE tokenizer.json whose vocabulary is the
// 256 single bytes plus <|endoftext|> (so every UTF-8 character of more than one byte is split
// over several tokens, as byte-level BPE splits rare characters).
#ifndef PL_TEST_HF_FOLDER_H
#define PL_TEST_HF_FOLDER_H

#include <stdint.h>

// Write the folder `dir` (created if absent): d_model (even), n_layers, 2 heads, 1 kv head, ffn
// 2 * d_model, vocab 257; weights uniform in ±0.2 from seed. -1 with pl_errmsg() on a write error.
int test_write_hf_llama(const char *dir, int d_model, int n_layers, uint64_t seed);

#endif
