// Parts shared by both tokenizer kinds: the vocabulary table, encode dispatch, decoding, UTF-8.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/error.h"
#include "runtime/tokenizer/tokenizer_internal.h"

static uint64_t hash_bytes(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

void pl_strmap_init(pl_strmap *m, size_t n_expected) {
    size_t cap = 16;
    while (cap < n_expected * 2) cap *= 2;
    m->cap = cap;
    m->keys = calloc(cap, sizeof *m->keys);
    m->values = calloc(cap, sizeof *m->values);
}

void pl_strmap_put(pl_strmap *m, char *key, int32_t value) {
    size_t len = strlen(key), i = hash_bytes(key, len) & (m->cap - 1);
    while (m->keys[i]) {
        if (strcmp(m->keys[i], key) == 0) return;  // first occurrence wins (lowest id / rank)
        i = (i + 1) & (m->cap - 1);
    }
    m->keys[i] = key;
    m->values[i] = value;
}

int32_t pl_strmap_get(const pl_strmap *m, const char *key, size_t len) {
    if (!m->cap) return -1;
    size_t i = hash_bytes(key, len) & (m->cap - 1);
    while (m->keys[i]) {
        if (strncmp(m->keys[i], key, len) == 0 && m->keys[i][len] == '\0') return m->values[i];
        i = (i + 1) & (m->cap - 1);
    }
    return -1;
}

void pl_strmap_free(pl_strmap *m) {
    free(m->keys);
    free(m->values);
    memset(m, 0, sizeof *m);
}

void pl_ids_push(int32_t **ids, size_t *n, size_t *cap, int32_t id) {
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        *ids = realloc(*ids, *cap * sizeof **ids);
    }
    (*ids)[(*n)++] = id;
}

size_t pl_utf8_char_len(unsigned char lead) {
    if (lead < 0x80) return 1;
    if ((lead & 0xe0) == 0xc0) return 2;
    if ((lead & 0xf0) == 0xe0) return 3;
    if ((lead & 0xf8) == 0xf0) return 4;
    return 1;  // a stray continuation byte stands alone
}

// Bytes of the valid UTF-8 character at s[0..len) (shortest form, no surrogates), or 0 if invalid.
static size_t utf8_char_at(const unsigned char *s, size_t len) {
    unsigned c = s[0];
    int extra;
    uint32_t cp, min;
    if (c < 0x80) return 1;
    else if ((c & 0xe0) == 0xc0) { extra = 1; cp = c & 0x1f; min = 0x80; }
    else if ((c & 0xf0) == 0xe0) { extra = 2; cp = c & 0x0f; min = 0x800; }
    else if ((c & 0xf8) == 0xf0) { extra = 3; cp = c & 0x07; min = 0x10000; }
    else return 0;
    for (int k = 1; k <= extra; k++) {
        if ((size_t)k >= len || (s[k] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return (size_t)extra + 1;
}

bool pl_utf8_valid(const char *text, size_t len, size_t *bad_offset) {
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_char_at(s + i, len - i);
        if (n == 0) {
            if (bad_offset) *bad_offset = i;
            return false;
        }
        i += n;
    }
    return true;
}

size_t pl_utf8_display(char *out, size_t out_size, const char *bytes, size_t len) {
    if (out_size == 0) return 0;
    const unsigned char *s = (const unsigned char *)bytes;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_char_at(s + i, len - i);
        if (n > 0) {
            if (o + n >= out_size) break;  // whole characters only
            memcpy(out + o, s + i, n);
            o += n, i += n;
        } else {
            if (o + 4 >= out_size) break;
            snprintf(out + o, 5, "\\x%02x", s[i]);
            o += 4, i++;
        }
    }
    out[o] = '\0';
    return o;
}

int pl_tokenizer_encode(const pl_tokenizer *t, const char *text, bool add_bos, int32_t **ids) {
    size_t len = strlen(text), bad;
    *ids = NULL;
    if (!pl_utf8_valid(text, len, &bad)) {  // a count is returned: -1 on failure, the code in pl_errcode()
        pl_fail_code(PL_ERR_FORMAT, "prompt is not valid UTF-8 (bad byte 0x%02x at offset %zu)", (unsigned char)text[bad],
                     bad);
        return -1;
    }
    int32_t *out = NULL;
    size_t n = 0, cap = 0;
    if (add_bos && t->add_bos && t->bos >= 0) pl_ids_push(&out, &n, &cap, t->bos);
    int rc = t->kind == PL_TOK_SPM ? pl_spm_encode(t, text, len, &out, &n, &cap) : pl_bpe_encode(t, text, len, &out, &n, &cap);
    if (rc != 0) {
        free(out);
        return -1;
    }
    if (!out) pl_ids_push(&out, &n, &cap, 0), n = 0;  // always hand back an allocation
    *ids = out;
    return (int)n;
}

const char *pl_tokenizer_piece_bytes(const pl_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) {
        *len = 0;
        return "";
    }
    *len = t->piece_len[id];
    return t->piece_bytes[id];
}

const char *pl_tokenizer_token_text(const pl_tokenizer *t, int32_t id) {
    return (id >= 0 && id < t->n_vocab) ? t->tokens[id] : "";
}

char *pl_tokenizer_decode(const pl_tokenizer *t, const int32_t *ids, int n) {
    size_t cap = 64, len = 0;
    char *out = malloc(cap);
    bool after_bos = true;  // the SPM dummy prefix sits on the first text token
    for (int i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->n_vocab) continue;
        if (id == t->bos || id == t->eos || t->types[id] == PL_TOKTYPE_CONTROL) continue;
        const char *p = t->piece_bytes[id];
        size_t pl = t->piece_len[id];
        if (t->kind == PL_TOK_SPM && t->add_space_prefix && after_bos && pl > 0 && p[0] == ' ') p++, pl--;
        after_bos = false;
        if (len + pl + 1 > cap) {
            while (len + pl + 1 > cap) cap *= 2;
            out = realloc(out, cap);
        }
        memcpy(out + len, p, pl);
        len += pl;
    }
    out[len] = '\0';
    return out;
}

int pl_tokenizer_vocab_size(const pl_tokenizer *t) { return t->n_vocab; }
int32_t pl_tokenizer_bos(const pl_tokenizer *t) { return t->bos; }
int32_t pl_tokenizer_eos(const pl_tokenizer *t) { return t->eos; }
pl_tokenizer_kind pl_tokenizer_get_kind(const pl_tokenizer *t) { return t->kind; }

void pl_tokenizer_free(pl_tokenizer *t) {
    if (!t) return;
    for (int i = 0; i < t->n_vocab; i++) {
        free(t->tokens[i]);
        free(t->piece_bytes[i]);
    }
    free(t->tokens);
    free(t->piece_bytes);
    free(t->piece_len);
    free(t->scores);
    free(t->types);
    free(t->special_ids);
    pl_strmap_free(&t->vocab);
    if (t->merge_rank.keys) {
        for (size_t i = 0; i < t->merge_rank.cap; i++) free(t->merge_rank.keys[i]);
        pl_strmap_free(&t->merge_rank);
    }
    if (t->regex) pcre2_code_free((pcre2_code *)t->regex);
    free(t);
}
