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

static size_t utf8_char_len(unsigned char c) {
    if (c < 0x80) return 1;
    if ((c & 0xe0) == 0xc0) return 2;
    if ((c & 0xf0) == 0xe0) return 3;
    if ((c & 0xf8) == 0xf0) return 4;
    return 1;
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
        size_t n = utf8_char_len((unsigned char)text[i]);
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

static const pl_tokenizer *sort_ctx;  // qsort has no context argument; construction is single-threaded

static int special_longer_first(const void *a, const void *b) {
    size_t la = sort_ctx->piece_len[*(const int32_t *)a], lb = sort_ctx->piece_len[*(const int32_t *)b];
    if (la != lb) return la > lb ? -1 : 1;
    return *(const int32_t *)a - *(const int32_t *)b;
}

pl_tokenizer *pl_tokenizer_new_bpe(int n_vocab, const char *const *tokens, const int32_t *types, int n_merges,
                                   const char *const *merges, const char *pretokenizer, int32_t bos, int32_t eos,
                                   bool add_bos) {
    const char *regex;
    if (!pretokenizer || !*pretokenizer || !strcmp(pretokenizer, "gpt2") || !strcmp(pretokenizer, "gpt-2")) {
        regex = GPT2_REGEX;
        pretokenizer = "gpt2";
    } else if (!strcmp(pretokenizer, "qwen2")) {
        regex = QWEN2_REGEX;
    } else {
        pl_fail("byte-level BPE: unsupported pre-tokenizer \"%s\" (supported: gpt2, qwen2)", pretokenizer);
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
    sort_ctx = t;
    qsort(t->special_ids, (size_t)t->n_special, sizeof *t->special_ids, special_longer_first);

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

typedef struct {
    char *mapped;        // the pre-token in the byte alphabet
    size_t *start;       // (n_sym) symbol offsets into mapped
    size_t *len;         // (n_sym) symbol lengths
    int32_t *rank;       // (n_sym) rank of the pair (i, i + 1); INT32_MAX if none
    char *key;           // "left right" scratch
    size_t cap_bytes, cap_syms;
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
        s->start = realloc(s->start, s->cap_syms * sizeof *s->start);
        s->len = realloc(s->len, s->cap_syms * sizeof *s->len);
        s->rank = realloc(s->rank, s->cap_syms * sizeof *s->rank);
    }
}

static int32_t pair_rank(const pl_tokenizer *t, bpe_scratch *s, size_t i) {
    size_t a = s->len[i], b = s->len[i + 1];
    memcpy(s->key, s->mapped + s->start[i], a);
    s->key[a] = ' ';
    memcpy(s->key + a + 1, s->mapped + s->start[i + 1], b);
    int32_t r = pl_strmap_get(&t->merge_rank, s->key, a + 1 + b);
    return r < 0 ? INT32_MAX : r;
}

// BPE over one pre-token's bytes, appending the ids.
static void bpe_piece(const pl_tokenizer *t, bpe_scratch *s, const char *bytes, size_t n_bytes, int32_t **ids,
                      size_t *n, size_t *cap) {
    scratch_reserve(s, n_bytes);
    size_t m = 0, n_sym = 0;
    for (size_t i = 0; i < n_bytes; i++) {
        s->start[n_sym] = m;
        s->len[n_sym] = byte_symbol_utf8((uint8_t)bytes[i], s->mapped + m);
        m += s->len[n_sym++];
    }
    int32_t whole = n_sym > 1 ? -1 : pl_strmap_get(&t->vocab, s->mapped, m);
    if (whole >= 0) {
        pl_ids_push(ids, n, cap, whole);
        return;
    }
    for (size_t i = 0; i + 1 < n_sym; i++) s->rank[i] = pair_rank(t, s, i);
    while (n_sym > 1) {
        size_t best = 0;
        for (size_t i = 1; i + 1 < n_sym; i++)
            if (s->rank[i] < s->rank[best]) best = i;  // ties: leftmost, as the reference does
        if (s->rank[best] == INT32_MAX) break;
        s->len[best] += s->len[best + 1];
        size_t tail = n_sym - best - 2;
        memmove(s->start + best + 1, s->start + best + 2, tail * sizeof *s->start);
        memmove(s->len + best + 1, s->len + best + 2, tail * sizeof *s->len);
        memmove(s->rank + best + 1, s->rank + best + 2, tail * sizeof *s->rank);
        n_sym--;
        if (best > 0) s->rank[best - 1] = pair_rank(t, s, best - 1);
        if (best + 1 < n_sym) s->rank[best] = pair_rank(t, s, best);
    }
    for (size_t i = 0; i < n_sym; i++) {
        int32_t id = pl_strmap_get(&t->vocab, s->mapped + s->start[i], s->len[i]);
        if (id >= 0) {
            pl_ids_push(ids, n, cap, id);
            continue;
        }
        // A merged symbol missing from the vocabulary (a malformed file): fall back to its characters.
        for (size_t k = s->start[i]; k < s->start[i] + s->len[i];) {
            size_t cl = utf8_char_len((unsigned char)s->mapped[k]);
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
            pos = ms + utf8_char_len((unsigned char)text[ms]);
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
    free(s.start);
    free(s.len);
    free(s.rank);
    return rc;
}
