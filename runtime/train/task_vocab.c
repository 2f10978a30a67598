// The character-level SentencePiece vocabulary of the bundled model (see task_vocab.h).
#include "runtime/train/task_vocab.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define FIRST_CHAR_ID (3 + 256)

static char token_text[PL_TASK_VOCAB_SIZE][8];
static const char *token_ptr[PL_TASK_VOCAB_SIZE];
static float scores[PL_TASK_VOCAB_SIZE];
static int32_t types[PL_TASK_VOCAB_SIZE];
static pthread_once_t built = PTHREAD_ONCE_INIT;

static void build(void) {
    strcpy(token_text[0], "<unk>");
    strcpy(token_text[1], "<s>");
    strcpy(token_text[2], "</s>");
    types[0] = 2;  // unknown
    types[1] = types[2] = 3;  // control
    for (int b = 0; b < 256; b++) {
        snprintf(token_text[3 + b], sizeof token_text[0], "<0x%02X>", b);
        types[3 + b] = 6;  // byte
    }
    for (int c = 0x20; c <= 0x7E; c++) {
        int id = FIRST_CHAR_ID + c - 0x20;
        if (c == ' ')
            strcpy(token_text[id], "\xE2\x96\x81");  // U+2581, SentencePiece's space
        else
            token_text[id][0] = (char)c, token_text[id][1] = '\0';
        types[id] = 1;  // normal
        scores[id] = -(float)(c - 0x20);  // like sentencepiece's ordering; irrelevant without merges
    }
    for (int i = 0; i < PL_TASK_VOCAB_SIZE; i++) token_ptr[i] = token_text[i];
}

const char *const *pl_task_vocab_tokens(void) {
    pthread_once(&built, build);
    return token_ptr;
}
const float *pl_task_vocab_scores(void) {
    pthread_once(&built, build);
    return scores;
}
const int32_t *pl_task_vocab_types(void) {
    pthread_once(&built, build);
    return types;
}

int32_t pl_task_vocab_byte_id(unsigned char c) {
    return (c >= 0x20 && c <= 0x7E) ? FIRST_CHAR_ID + (c - 0x20) : 3 + c;
}

int pl_task_vocab_id_byte(int32_t id) {
    if (id >= FIRST_CHAR_ID && id < PL_TASK_VOCAB_SIZE) return 0x20 + (id - FIRST_CHAR_ID);
    if (id >= 3 && id < FIRST_CHAR_ID) return id - 3;
    return -1;
}
