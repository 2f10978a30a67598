// The task tokenizer of the bundled model: a SentencePiece ("llama") vocabulary that is character
// level. ids 0 <unk>, 1 <s>, 2 </s>, 3..258 the byte tokens <0x00>..<0xFF> (type 6), then one
// normal token per printable ASCII character 0x20..0x7E (space written "▁"). All normal tokens are
// single characters, so SentencePiece has no merges to apply: text maps to one token per byte,
// bytes outside printable ASCII (e.g. "\n") through byte fallback.
#ifndef PL_TASK_VOCAB_H
#define PL_TASK_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#define PL_TASK_VOCAB_SIZE (3 + 256 + 95)
#define PL_TASK_UNK 0
#define PL_TASK_BOS 1
#define PL_TASK_EOS 2

// The vocabulary strings (static, NUL-terminated), scores and GGUF token types of every id.
const char *const *pl_task_vocab_tokens(void);
const float *pl_task_vocab_scores(void);
const int32_t *pl_task_vocab_types(void);
// The id of one byte of text (what SentencePiece gives for it in this vocabulary).
int32_t pl_task_vocab_byte_id(unsigned char c);
// The byte an id stands for, or -1 for <unk>, <s>, </s>.
int pl_task_vocab_id_byte(int32_t id);

#endif
