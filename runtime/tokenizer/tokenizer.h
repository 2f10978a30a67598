// Tokenizers: SentencePiece-style BPE (GGUF tokenizer.ggml.model = "llama") and byte-level BPE
// (GGUF "gpt2" with merges, or a Hugging Face tokenizer.json). Both map text <-> token ids and
// decode back to the exact bytes, including UTF-8 sequences split across tokens.
#ifndef PL_TOKENIZER_H
#define PL_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { PL_TOK_SPM, PL_TOK_BPE } pl_tokenizer_kind;

typedef struct pl_tokenizer pl_tokenizer;

// Encode UTF-8 text. add_bos prepends BOS when the tokenizer has one (and the model wants it).
// *ids is malloc'd (caller frees). Returns the count, or -1 (invalid UTF-8, naming the byte offset).
int pl_tokenizer_encode(const pl_tokenizer *t, const char *text, bool add_bos, int32_t **ids);
// The bytes a token stands for, as it appears in decoded text (byte tokens give their byte,
// "▁" gives a space, byte-level BPE symbols are mapped back). *len receives the length.
const char *pl_tokenizer_piece_bytes(const pl_tokenizer *t, int32_t id, size_t *len);
// The token's vocabulary string as stored ("▁Once", "<0x0A>", "Ġthe"), for display.
const char *pl_tokenizer_token_text(const pl_tokenizer *t, int32_t id);
// Decode ids to text (malloc'd, NUL-terminated). Drops BOS/EOS and, for SPM, the dummy-prefix space
// of the first token after BOS, so decode(encode(text)) == text.
char *pl_tokenizer_decode(const pl_tokenizer *t, const int32_t *ids, int n);
int pl_tokenizer_vocab_size(const pl_tokenizer *t);
int32_t pl_tokenizer_bos(const pl_tokenizer *t);  // -1 if none
int32_t pl_tokenizer_eos(const pl_tokenizer *t);  // -1 if none
pl_tokenizer_kind pl_tokenizer_get_kind(const pl_tokenizer *t);
void pl_tokenizer_free(pl_tokenizer *t);

// Builders used by the loaders. Arrays are copied; the tokenizer owns its memory.
// SentencePiece: tokens[i] with scores[i] and types[i] (GGUF token_type: 1 normal, 2 unknown,
// 3 control, 6 byte). add_space_prefix inserts "▁" before the text (the dummy prefix).
pl_tokenizer *pl_tokenizer_new_spm(int n_vocab, const char *const *tokens, const float *scores, const int32_t *types,
                                   int32_t bos, int32_t eos, int32_t unk, bool add_bos, bool add_space_prefix);
// Byte-level BPE: vocab strings in the GPT-2 byte-to-unicode alphabet, merges "a b" in rank order.
// pretokenizer: "gpt2" or "qwen2" (the regex that splits text before BPE). special tokens are
// matched literally before splitting.
pl_tokenizer *pl_tokenizer_new_bpe(int n_vocab, const char *const *tokens, const int32_t *types, int n_merges,
                                   const char *const *merges, const char *pretokenizer, int32_t bos, int32_t eos,
                                   bool add_bos);
// Load a Hugging Face tokenizer.json (byte-level BPE). Returns NULL with pl_errmsg naming the file.
pl_tokenizer *pl_tokenizer_load_hf_json(const char *path);

// True if text is valid UTF-8; otherwise *bad_offset gets the first bad byte's offset.
bool pl_utf8_valid(const char *text, size_t len, size_t *bad_offset);
// A valid UTF-8 string to show bytes that may not be (a byte-level token is often part of a
// character): whole characters as they are, every other byte as the four characters \xNN. Writes at
// most out_size - 1 bytes plus a NUL into out, never cutting a character or an escape; returns the
// length written. Needs up to 4 * len + 1 bytes for the whole text.
size_t pl_utf8_display(char *out, size_t out_size, const char *bytes, size_t len);

#endif
