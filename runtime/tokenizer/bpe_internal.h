// Private to bpe.c, hf_tokenizer.c and tests/test_bpe.c: the GPT-2 byte <-> unicode alphabet and the
// hook a tokenizer.json loader uses to install its own pre-tokenizer regex. Not part of the public API.
#ifndef PL_BPE_INTERNAL_H
#define PL_BPE_INTERNAL_H

#include <stdint.h>

#include "runtime/tokenizer/tokenizer_internal.h"

// GPT-2's bytes_to_unicode(): printable bytes stand for themselves, the other 68 map to U+0100..U+0143.
uint32_t pl_bpe_byte_to_codepoint(uint8_t byte);
// The inverse: the byte a code point of that alphabet stands for, or -1 if it is outside the alphabet.
int pl_bpe_codepoint_to_byte(uint32_t codepoint);

// Replace the pre-tokenizer regex of a byte-level tokenizer with `pattern` (PCRE2, UTF + UCP), or
// with none when pattern is NULL (each text segment between special tokens is then one pre-token).
// `origin` names where the pattern came from, for the error message. Returns 0 or -1 (pl_errmsg set).
int pl_bpe_set_regex(pl_tokenizer *t, const char *pattern, const char *origin);

#endif
