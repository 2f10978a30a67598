// SentencePiece-style BPE as llama.cpp applies it to GGUF "llama" vocabularies: split the text
// (spaces written as U+2581, with a dummy-prefix space) into UTF-8 characters, repeatedly merge the
// adjacent pair whose concatenation is the highest-scoring vocabulary entry, and fall back to
// <0xNN> byte tokens for characters the vocabulary lacks.
#include <stdlib.h>
#include <string.h>

#include "runtime/base/error.h"
#include "runtime/tokenizer/tokenizer_internal.h"

#define SPM_SPACE "\xe2\x96\x81"  // U+2581 LOWER ONE EIGHTH BLOCK

typedef struct {
    int prev, next;     // linked list over symbols; -1 at the ends
    const char *text;   // into the normalized buffer
    size_t len;         // 0 once merged into its left neighbour
} spm_symbol;

typedef struct {
    int left, right;
    float score;
    size_t len;  // combined length when queued: a changed length means the pair is stale
} spm_bigram;

typedef struct {
    spm_bigram *items;
    size_t n, cap;
} spm_heap;

// Max-heap on score; ties go to the leftmost pair (as llama.cpp orders them).
static bool bigram_before(const spm_bigram *a, const spm_bigram *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(spm_heap *h, spm_bigram b) {
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->items = realloc(h->items, h->cap * sizeof *h->items);
    }
    size_t i = h->n++;
    h->items[i] = b;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!bigram_before(&h->items[i], &h->items[parent])) break;
        spm_bigram tmp = h->items[i];
        h->items[i] = h->items[parent];
        h->items[parent] = tmp;
        i = parent;
    }
}

static spm_bigram heap_pop(spm_heap *h) {
    spm_bigram top = h->items[0];
    h->items[0] = h->items[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, best = i;
        if (l < h->n && bigram_before(&h->items[l], &h->items[best])) best = l;
        if (r < h->n && bigram_before(&h->items[r], &h->items[best])) best = r;
        if (best == i) break;
        spm_bigram tmp = h->items[i];
        h->items[i] = h->items[best];
        h->items[best] = tmp;
        i = best;
    }
    return top;
}

static void try_bigram(const pl_tokenizer *t, const spm_symbol *sym, int left, int right, spm_heap *heap) {
    if (left < 0 || right < 0) return;
    size_t len = sym[left].len + sym[right].len;
    int32_t id = pl_strmap_get(&t->vocab, sym[left].text, len);
    if (id < 0) return;
    heap_push(heap, (spm_bigram){left, right, t->scores[id], len});
}

int pl_spm_encode(const pl_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n, size_t *cap) {
    if (len == 0) return 0;  // llama.cpp adds no dummy prefix to empty text
    // Normalize: dummy prefix, spaces -> U+2581.
    size_t n_spaces = 1;
    for (size_t i = 0; i < len; i++) n_spaces += text[i] == ' ';
    char *norm = malloc(len + n_spaces * 3 + 1);
    size_t nl = 0;
    if (t->add_space_prefix) memcpy(norm, SPM_SPACE, 3), nl = 3;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') memcpy(norm + nl, SPM_SPACE, 3), nl += 3;
        else norm[nl++] = text[i];
    }
    norm[nl] = '\0';

    spm_symbol *sym = malloc(nl * sizeof *sym);
    int n_sym = 0;
    for (size_t off = 0; off < nl;) {
        size_t cl = pl_utf8_char_len((unsigned char)norm[off]);
        if (off + cl > nl) cl = nl - off;
        sym[n_sym] = (spm_symbol){n_sym - 1, -1, norm + off, cl};
        if (n_sym > 0) sym[n_sym - 1].next = n_sym;
        n_sym++;
        off += cl;
    }

    spm_heap heap = {0};
    for (int i = 1; i < n_sym; i++) try_bigram(t, sym, i - 1, i, &heap);
    while (heap.n > 0) {
        spm_bigram b = heap_pop(&heap);
        spm_symbol *l = &sym[b.left], *r = &sym[b.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != b.len) continue;  // stale
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = b.left;
        try_bigram(t, sym, l->prev, b.left, &heap);
        try_bigram(t, sym, b.left, l->next, &heap);
    }
    free(heap.items);

    for (int i = 0; i != -1 && n_sym > 0; i = sym[i].next) {
        int32_t id = pl_strmap_get(&t->vocab, sym[i].text, sym[i].len);
        if (id >= 0) {
            pl_ids_push(ids, n, cap, id);
            continue;
        }
        for (size_t k = 0; k < sym[i].len; k++) {  // byte fallback
            int32_t bid = t->byte_token[(unsigned char)sym[i].text[k]];
            pl_ids_push(ids, n, cap, bid >= 0 ? bid : t->unk);
        }
    }
    free(sym);
    free(norm);
    return 0;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

pl_tokenizer *pl_tokenizer_new_spm(int n_vocab, const char *const *tokens, const float *scores, const int32_t *types,
                                   int32_t bos, int32_t eos, int32_t unk, bool add_bos, bool add_space_prefix) {
    pl_tokenizer *t = calloc(1, sizeof *t);
    t->kind = PL_TOK_SPM;
    t->n_vocab = n_vocab;
    t->tokens = calloc((size_t)n_vocab, sizeof *t->tokens);
    t->piece_bytes = calloc((size_t)n_vocab, sizeof *t->piece_bytes);
    t->piece_len = calloc((size_t)n_vocab, sizeof *t->piece_len);
    t->scores = malloc((size_t)n_vocab * sizeof *t->scores);
    t->types = malloc((size_t)n_vocab * sizeof *t->types);
    t->bos = bos, t->eos = eos, t->unk = unk < 0 ? 0 : unk;
    t->add_bos = add_bos;
    t->add_space_prefix = add_space_prefix;
    for (int b = 0; b < 256; b++) t->byte_token[b] = -1;
    pl_strmap_init(&t->vocab, (size_t)n_vocab);
    for (int i = 0; i < n_vocab; i++) {
        const char *tok = tokens[i];
        t->tokens[i] = strdup(tok);
        t->scores[i] = scores ? scores[i] : 0.0f;
        t->types[i] = types ? types[i] : PL_TOKTYPE_NORMAL;
        size_t tl = strlen(tok);
        if (t->types[i] == PL_TOKTYPE_BYTE && tl == 6 && strncmp(tok, "<0x", 3) == 0 && tok[5] == '>' &&
            hex_digit(tok[3]) >= 0 && hex_digit(tok[4]) >= 0) {
            int byte = hex_digit(tok[3]) * 16 + hex_digit(tok[4]);
            t->byte_token[byte] = i;
            t->piece_bytes[i] = malloc(2);
            t->piece_bytes[i][0] = (char)byte;
            t->piece_bytes[i][1] = '\0';
            t->piece_len[i] = 1;
        } else {
            // "▁" -> " " for decoding
            char *p = malloc(tl + 1);
            size_t pl = 0;
            for (size_t k = 0; k < tl;) {
                if (k + 3 <= tl && memcmp(tok + k, SPM_SPACE, 3) == 0) p[pl++] = ' ', k += 3;
                else p[pl++] = tok[k++];
            }
            p[pl] = '\0';
            t->piece_bytes[i] = p;
            t->piece_len[i] = pl;
        }
        // Only normal / user-defined / unknown-free tokens take part in merges; control tokens
        // (<s>, </s>) are never produced from text.
        if (t->types[i] != PL_TOKTYPE_CONTROL && t->types[i] != PL_TOKTYPE_BYTE && t->types[i] != PL_TOKTYPE_UNUSED)
            pl_strmap_put(&t->vocab, t->tokens[i], i);
    }
    return t;
}
