// Private layout shared by tokenizer.c (common parts), spm.c (SentencePiece BPE) and bpe.c
// (byte-level BPE). Not part of the public API.
#ifndef PL_TOKENIZER_INTERNAL_H
#define PL_TOKENIZER_INTERNAL_H

#include "runtime/tokenizer/tokenizer.h"

// GGUF token types
enum { PL_TOKTYPE_NORMAL = 1, PL_TOKTYPE_UNKNOWN = 2, PL_TOKTYPE_CONTROL = 3, PL_TOKTYPE_USER = 4,
       PL_TOKTYPE_UNUSED = 5, PL_TOKTYPE_BYTE = 6 };

// Open-addressing string -> id table.
typedef struct {
    char **keys;
    int32_t *values;
    size_t cap;  // power of two
} pl_strmap;
void pl_strmap_init(pl_strmap *m, size_t n_expected);
void pl_strmap_put(pl_strmap *m, char *key_owned_elsewhere, int32_t value);
int32_t pl_strmap_get(const pl_strmap *m, const char *key, size_t len);  // -1 if absent
void pl_strmap_free(pl_strmap *m);  // frees the table, not the keys

struct pl_tokenizer {
    pl_tokenizer_kind kind;
    int n_vocab;
    char **tokens;       // vocabulary strings as stored
    float *scores;       // SPM merge scores (NULL for BPE)
    int32_t *types;      // token types (PL_TOKTYPE_*)
    char **piece_bytes;  // decoded bytes of each token
    size_t *piece_len;
    pl_strmap vocab;     // token string -> id
    int32_t bos, eos, unk;
    bool add_bos;
    bool add_space_prefix;  // SPM dummy prefix
    int32_t byte_token[256];  // SPM: id of <0xNN>, -1 if absent
    // BPE
    pl_strmap merge_rank;    // "left right" -> rank; keys malloc'd, freed by pl_tokenizer_free
    char pretokenizer[16];   // "gpt2" or "qwen2"
    void *regex;             // pcre2_code *
    int32_t *special_ids;    // tokens matched literally before splitting (control / user-defined)
    int n_special;
};

// spm.c / bpe.c entry points used by tokenizer.c
int pl_spm_encode(const pl_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n, size_t *cap);
int pl_bpe_encode(const pl_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n, size_t *cap);
// Length of the UTF-8 sequence a lead byte starts (1 for ASCII and for invalid bytes).
size_t pl_utf8_char_len(unsigned char lead);
// Append one id to a growable array.
void pl_ids_push(int32_t **ids, size_t *n, size_t *cap, int32_t id);

#endif
