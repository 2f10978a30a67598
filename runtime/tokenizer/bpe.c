// Byte-level BPE as GPT-2, Qwen2 and Hugging Face `tokenizers` apply it: special tokens are cut out
// literally (longest first), the rest is split into pre-tokens by a regex, each pre-token's bytes are
// written in GPT-2's printable byte alphabet ("Ġ" = space), and the adjacent pair with the lowest
// merge rank is merged until no ranked pair is left. Every byte has a symbol, so nothing is unknown.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/error.h"
#include "runtime/tokenizer/bpe_internal.h"
#include "runtime/tokenizer/tokenizer_internal.h"

// The pre-tokenizer regexes, exactly as the reference implementations write them.
static const char GPT2_REGEX[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char QWEN2_REGEX[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                                  "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// ---- GPT-2 byte alphabet -------------------------------------------------------------------------

static bool byte_is_printable(unsigned b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174; }

uint32_t pl_bpe_byte_to_codepoint(uint8_t byte) {
    unsigned b = byte;
    if (byte_is_printable(b)) return b;
    // The 68 others get 256 + n in byte order: 0..32 -> n 0..32, 127..160 -> n 33..66, 173 -> n 67.
    if (b <= 32) return 256 + b;
    if (b <= 160) return 256 + 33 + (b - 127);
    return 256 + 67;  // 173, the soft hyphen
}

int pl_bpe_codepoint_to_byte(uint32_t cp) {
    if (cp < 256) return byte_is_printable(cp) ? (int)cp : -1;
    if (cp > 256 + 67) return -1;
    uint32_t n = cp - 256;
    if (n <= 32) return (int)n;
    if (n <= 66) return (int)(127 + n - 33);
    return 173;
}

// Write the UTF-8 of byte's alphabet symbol (1 or 2 bytes) to out; returns the length.
static size_t byte_symbol_utf8(uint8_t byte, char out[2]) {
    uint32_t cp = pl_bpe_byte_to_codepoint(byte);
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xc0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
}

static uint32_t utf8_decode(const unsigned char *s, size_t n) {
    if (n == 1) return s[0];
    uint32_t cp = s[0] & (0x7f >> n);
    for (size_t k = 1; k < n; k++) cp = (cp << 6) | (s[k] & 0x3f);
    return cp;
}

// The bytes a vocabulary string stands for: each alphabet character gives its byte; a character
// outside the alphabet (a hand-added token) is kept as its own UTF-8. Returns a malloc'd buffer.
static char *symbols_to_bytes(const char *text, size_t *out_len) {
    size_t len = strlen(text), o = 0;
    char *out = malloc(len + 1);
    for (size_t i = 0; i < len;) {
        size_t n = pl_utf8_char_len((unsigned char)text[i]);
        if (i + n > len) n = len - i;
        int b = pl_bpe_codepoint_to_byte(utf8_decode((const unsigned char *)text + i, n));
        if (b >= 0) out[o++] = (char)b;
        else memcpy(out + o, text + i, n), o += n;
        i += n;
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

// ---- construction --------------------------------------------------------------------------------

int pl_bpe_set_regex(pl_tokenizer *t, const char *pattern, const char *origin) {
    pcre2_code *code = NULL;
    if (pattern) {
        int err;
        PCRE2_SIZE at;
        code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err, &at, NULL);
        if (!code) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(err, msg, sizeof msg);
            return pl_fail("%s: pre-tokenizer regex does not compile at offset %zu: %s", origin, (size_t)at, (char *)msg);
        }
        pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // optional speed-up; the interpreter works without it
    }
    if (t->regex) pcre2_code_free((pcre2_code *)t->regex);
    t->regex = code;
    return 0;
}

typedef struct {
    size_t len;
    int32_t id;
} special_entry;

static int special_longer_first(const void *a, const void *b) {
    const special_entry *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

pl_tokenizer *pl_tokenizer_new_bpe(int n_vocab, const char *const *tokens, const int32_t *types, int n_merges,
                                   const char *const *merges, const char *pretokenizer, int32_t bos, int32_t eos,
                                   bool add_bos) {
    // GGUF tokenizer.ggml.pre names, grouped as llama.cpp groups them (absent = GPT-2).
    const char *regex;
    if (!pretokenizer || !*pretokenizer || !strcmp(pretokenizer, "gpt2") || !strcmp(pretokenizer, "gpt-2") ||
        !strcmp(pretokenizer, "phi-2")) {
        regex = GPT2_REGEX;
        pretokenizer = "gpt2";
    } else if (!strcmp(pretokenizer, "qwen2") || !strcmp(pretokenizer, "deepseek-r1-qwen")) {
        regex = QWEN2_REGEX;
        pretokenizer = "qwen2";
    } else {
        pl_fail("byte-level BPE: unsupported pre-tokenizer \"%s\" (supported: gpt2, gpt-2, phi-2, qwen2, "
                "deepseek-r1-qwen)", pretokenizer);
        return NULL;
    }
    if (n_vocab <= 0 || !tokens) {
        pl_fail("byte-level BPE: empty vocabulary");
        return NULL;
    }
    if (n_merges < 0 || (n_merges > 0 && !merges)) {
        pl_fail("byte-level BPE: bad merge list");
        return NULL;
    }
    if (bos >= n_vocab || eos >= n_vocab) {
        pl_fail("byte-level BPE: BOS %d / EOS %d outside the vocabulary of %d tokens", bos, eos, n_vocab);
        return NULL;
    }
    for (int i = 0; i < n_vocab; i++) {
        if (!tokens[i]) {
            pl_fail("byte-level BPE: token %d has no text", i);
            return NULL;
        }
    }

    pl_tokenizer *t = calloc(1, sizeof *t);
    t->kind = PL_TOK_BPE;
    t->n_vocab = n_vocab;
    t->tokens = calloc((size_t)n_vocab, sizeof *t->tokens);
    t->types = malloc((size_t)n_vocab * sizeof *t->types);
    t->piece_bytes = calloc((size_t)n_vocab, sizeof *t->piece_bytes);
    t->piece_len = calloc((size_t)n_vocab, sizeof *t->piece_len);
    t->bos = bos < 0 ? -1 : bos;
    t->eos = eos < 0 ? -1 : eos;
    t->unk = -1;
    t->add_bos = add_bos;
    for (int b = 0; b < 256; b++) t->byte_token[b] = -1;
    snprintf(t->pretokenizer, sizeof t->pretokenizer, "%s", pretokenizer);

    pl_strmap_init(&t->vocab, (size_t)n_vocab);
    t->special_ids = malloc((size_t)n_vocab * sizeof *t->special_ids);
    for (int i = 0; i < n_vocab; i++) {
        t->tokens[i] = strdup(tokens[i]);
        t->types[i] = types ? types[i] : PL_TOKTYPE_NORMAL;
        bool special = t->types[i] == PL_TOKTYPE_CONTROL || t->types[i] == PL_TOKTYPE_USER;
        if (special) {  // added tokens are stored as their raw text, not in the byte alphabet
            t->piece_len[i] = strlen(tokens[i]);
            t->piece_bytes[i] = strdup(tokens[i]);
            if (t->piece_len[i] > 0) t->special_ids[t->n_special++] = i;
        } else {
            t->piece_bytes[i] = symbols_to_bytes(tokens[i], &t->piece_len[i]);
        }
        pl_strmap_put(&t->vocab, t->tokens[i], i);
    }
    special_entry *order = malloc(((size_t)t->n_special + 1) * sizeof *order);
    for (int k = 0; k < t->n_special; k++) order[k] = (special_entry){t->piece_len[t->special_ids[k]], t->special_ids[k]};
    qsort(order, (size_t)t->n_special, sizeof *order, special_longer_first);
    for (int k = 0; k < t->n_special; k++) t->special_ids[k] = order[k].id;
    free(order);

    pl_strmap_init(&t->merge_rank, (size_t)n_merges);
    for (int r = 0; r < n_merges; r++) {
        if (!merges[r]) continue;
        size_t len = strlen(merges[r]);
        if (pl_strmap_get(&t->merge_rank, merges[r], len) >= 0) continue;  // duplicates keep the first rank
        pl_strmap_put(&t->merge_rank, strdup(merges[r]), r);
    }
    if (pl_bpe_set_regex(t, regex, "byte-level BPE") != 0) {
        pl_tokenizer_free(t);
        return NULL;
    }
    return t;
}

// ---- encoding ------------------------------------------------------------------------------------

// Symbols of one pre-token form a linked list; candidate merges wait in a min-heap on (rank, left
// position). A queued pair is stale once either side has grown or been absorbed, which its recorded
// lengths reveal. This is O(n log n) where rescanning all pairs after each merge is O(n^2).
typedef struct {
    size_t start, len;  // into mapped; len 0 once absorbed by its left neighbour
    int prev, next;     // -1 at the ends
} bpe_symbol;

typedef struct {
    int32_t rank;
    int left, right;
    size_t left_len, right_len;
} bpe_pair;

typedef struct {
    char *mapped;        // the pre-token in the byte alphabet
    bpe_symbol *sym;     // (n_sym)
    bpe_pair *heap;      // (n_heap)
    char *key;           // "left right" scratch
    size_t cap_bytes, cap_syms, cap_heap, n_heap;
} bpe_scratch;

static void scratch_reserve(bpe_scratch *s, size_t n_bytes) {
    size_t mapped_bytes = 2 * n_bytes + 2;
    if (mapped_bytes > s->cap_bytes) {
        s->cap_bytes = mapped_bytes;
        s->mapped = realloc(s->mapped, mapped_bytes);
        s->key = realloc(s->key, mapped_bytes + 1);
    }
    if (n_bytes + 1 > s->cap_syms) {
        s->cap_syms = n_bytes + 1;
        s->sym = realloc(s->sym, s->cap_syms * sizeof *s->sym);
    }
    s->n_heap = 0;
}

static bool pair_before(const bpe_pair *a, const bpe_pair *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);  // ties: leftmost, as the reference
}

static void heap_push(bpe_scratch *s, bpe_pair p) {
    if (s->n_heap == s->cap_heap) {
        s->cap_heap = s->cap_heap ? 2 * s->cap_heap : 64;
        s->heap = realloc(s->heap, s->cap_heap * sizeof *s->heap);
    }
    size_t i = s->n_heap++;
    while (i > 0 && pair_before(&p, &s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = p;
}

static bpe_pair heap_pop(bpe_scratch *s) {
    bpe_pair top = s->heap[0], last = s->heap[--s->n_heap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->n_heap) break;
        if (c + 1 < s->n_heap && pair_before(&s->heap[c + 1], &s->heap[c])) c++;
        if (!pair_before(&s->heap[c], &last)) break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (s->n_heap > 0) s->heap[i] = last;
    return top;
}

// Queue the pair (left, right) if the merge list ranks it.
static void try_pair(const pl_tokenizer *t, bpe_scratch *s, int left, int right) {
    if (left < 0 || right < 0) return;
    const bpe_symbol *a = &s->sym[left], *b = &s->sym[right];
    memcpy(s->key, s->mapped + a->start, a->len);
    s->key[a->len] = ' ';
    memcpy(s->key + a->len + 1, s->mapped + b->start, b->len);
    int32_t rank = pl_strmap_get(&t->merge_rank, s->key, a->len + 1 + b->len);
    if (rank >= 0) heap_push(s, (bpe_pair){rank, left, right, a->len, b->len});
}

// BPE over one pre-token's bytes, appending the ids.
static void bpe_piece(const pl_tokenizer *t, bpe_scratch *s, const char *bytes, size_t n_bytes, int32_t **ids,
                      size_t *n, size_t *cap) {
    scratch_reserve(s, n_bytes);
    size_t m = 0;
    int n_sym = (int)n_bytes;
    for (int i = 0; i < n_sym; i++) {
        size_t len = byte_symbol_utf8((uint8_t)bytes[i], s->mapped + m);
        s->sym[i] = (bpe_symbol){m, len, i - 1, i + 1 < n_sym ? i + 1 : -1};
        m += len;
    }
    for (int i = 0; i + 1 < n_sym; i++) try_pair(t, s, i, i + 1);
    while (s->n_heap > 0) {
        bpe_pair p = heap_pop(s);
        bpe_symbol *a = &s->sym[p.left], *b = &s->sym[p.right];
        if (a->len != p.left_len || b->len != p.right_len || a->next != p.right) continue;  // stale
        a->len += b->len;
        b->len = 0;
        a->next = b->next;
        if (b->next >= 0) s->sym[b->next].prev = p.left;
        try_pair(t, s, a->prev, p.left);
        try_pair(t, s, p.left, a->next);
    }
    for (int i = 0; i >= 0 && n_sym > 0; i = s->sym[i].next) {
        const bpe_symbol *sym = &s->sym[i];
        int32_t id = pl_strmap_get(&t->vocab, s->mapped + sym->start, sym->len);
        if (id >= 0) {
            pl_ids_push(ids, n, cap, id);
            continue;
        }
        // A merged symbol missing from the vocabulary (a malformed file): fall back to its characters.
        for (size_t k = sym->start; k < sym->start + sym->len;) {
            size_t cl = pl_utf8_char_len((unsigned char)s->mapped[k]);
            int32_t cid = pl_strmap_get(&t->vocab, s->mapped + k, cl);
            if (cid < 0) cid = t->unk;
            if (cid >= 0) pl_ids_push(ids, n, cap, cid);
            k += cl;
        }
    }
}

// Split one segment (no special tokens in it) with the regex: matches and the gaps between them are
// pre-tokens in text order (Hugging Face's "Isolated" behaviour).
static int split_segment(const pl_tokenizer *t, bpe_scratch *s, pcre2_match_data *md, const char *text, size_t len,
                         int32_t **ids, size_t *n, size_t *cap) {
    if (len == 0) return 0;
    if (!t->regex) {
        bpe_piece(t, s, text, len, ids, n, cap);
        return 0;
    }
    const pcre2_code *re = t->regex;
    size_t pos = 0, done = 0;
    uint32_t opts = 0;
    while (pos < len) {
        int rc = pcre2_match(re, (PCRE2_SPTR)text, len, pos, opts, md, NULL);
        opts = PCRE2_NO_UTF_CHECK;  // checked once for the whole segment
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return pl_fail("pre-tokenizer regex failed at byte %zu: %s", pos, (char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (me == ms) {  // an empty match splits nothing; step over one character
            pos = ms + pl_utf8_char_len((unsigned char)text[ms]);
            continue;
        }
        if (ms > done) bpe_piece(t, s, text + done, ms - done, ids, n, cap);
        bpe_piece(t, s, text + ms, me - ms, ids, n, cap);
        pos = done = me;
    }
    if (done < len) bpe_piece(t, s, text + done, len - done, ids, n, cap);
    return 0;
}

static int encode_segment(const pl_tokenizer *t, bpe_scratch *s, pcre2_match_data *md, const char *text, size_t len,
                          int32_t **ids, size_t *n, size_t *cap) {
    if (len == 0 || !t->add_space_prefix || text[0] == ' ') return split_segment(t, s, md, text, len, ids, n, cap);
    // Hugging Face ByteLevel(add_prefix_space=true) puts a space before every segment that lacks one.
    char *spaced = malloc(len + 1);
    spaced[0] = ' ';
    memcpy(spaced + 1, text, len);
    int rc = split_segment(t, s, md, spaced, len + 1, ids, n, cap);
    free(spaced);
    return rc;
}

// The special token that starts at text (longest first), or -1.
static int32_t special_at(const pl_tokenizer *t, const bool first_byte[256], const char *text, size_t left) {
    if (!first_byte[(unsigned char)text[0]]) return -1;
    for (int k = 0; k < t->n_special; k++) {
        int32_t id = t->special_ids[k];
        size_t l = t->piece_len[id];
        if (l <= left && memcmp(text, t->piece_bytes[id], l) == 0) return id;
    }
    return -1;
}

int pl_bpe_encode(const pl_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n, size_t *cap) {
    bool first_byte[256] = {false};
    for (int k = 0; k < t->n_special; k++) first_byte[(unsigned char)t->piece_bytes[t->special_ids[k]][0]] = true;
    bpe_scratch s = {0};
    pcre2_match_data *md = t->regex ? pcre2_match_data_create_from_pattern(t->regex, NULL) : NULL;
    int rc = 0;
    size_t seg = 0, i = 0;
    while (i < len && rc == 0) {
        int32_t sp = special_at(t, first_byte, text + i, len - i);
        if (sp < 0) {
            i++;
            continue;
        }
        rc = encode_segment(t, &s, md, text + seg, i - seg, ids, n, cap);
        pl_ids_push(ids, n, cap, sp);
        i += t->piece_len[sp];
        seg = i;
    }
    if (rc == 0) rc = encode_segment(t, &s, md, text + seg, len - seg, ids, n, cap);
    pcre2_match_data_free(md);
    free(s.mapped);
    free(s.key);
    free(s.sym);
    free(s.heap);
    return rc;
}
