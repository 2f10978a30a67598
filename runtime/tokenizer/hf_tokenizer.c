// Hugging Face tokenizer.json -> byte-level BPE tokenizer. Reads model (type BPE: vocab, merges in
// either the "a b" or the [a, b] form), added_tokens, the pre-tokenizer (ByteLevel alone = the GPT-2
// regex; Sequence[Split(regex, Isolated), ByteLevel(use_regex=false)] = that regex, as Qwen2 and
// Llama 3 write it) and BOS/EOS from the post-processor, a tokenizer_config.json beside the file,
// or well-known names. Anything the encoder would not reproduce exactly is refused with a message.
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/error.h"
#include "runtime/tokenizer/bpe_internal.h"
#include "runtime/tokenizer/tokenizer_internal.h"

#define MAX_VOCAB (1 << 24)

static const char GPT2_PATTERN[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char QWEN2_PATTERN[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                                    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static const char *type_of(const json_t *obj) {
    const char *s = json_string_value(json_object_get(obj, "type"));
    return s ? s : "";
}

// Everything the loader gathers before building the tokenizer.
typedef struct {
    const char *path;
    int n_vocab;
    const char **tokens;  // (n_vocab) borrowed from the JSON tree, or placeholders in owned
    int32_t *types;       // (n_vocab)
    char **owned;         // (n_vocab) placeholder strings for ids nobody named
    char **merges;        // (n_merges) "left right", owned
    int n_merges;
    char *regex;          // owned; NULL = no regex split
    bool add_prefix_space;
    int32_t bos, eos;
    bool add_bos;
} hf_parts;

static int32_t lookup_token(const hf_parts *p, const char *text) {
    if (!text) return -1;
    for (int i = 0; i < p->n_vocab; i++)
        if (p->tokens[i] && strcmp(p->tokens[i], text) == 0) return i;
    return -1;
}

static int read_id(const hf_parts *p, json_t *v, const char *what, const char *name, int32_t *id) {
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= MAX_VOCAB)
        return pl_fail_code(PL_ERR_FORMAT, "%s: %s \"%s\" has no valid id (want an integer in [0, %d))", p->path, what,
                            name, MAX_VOCAB);
    *id = (int32_t)json_integer_value(v);
    return 0;
}

static int read_vocab(hf_parts *p, json_t *model, json_t *added) {
    json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab))
        return pl_fail_code(PL_ERR_NOT_FOUND, "%s: model.vocab is missing or not an object", p->path);
    if (json_object_size(vocab) == 0) return pl_fail_code(PL_ERR_FORMAT, "%s: model.vocab is empty", p->path);
    if (added && !json_is_array(added)) return pl_fail_code(PL_ERR_FORMAT, "%s: added_tokens is not an array", p->path);
    int32_t max_id = -1, id = -1;  // read_id sets id before every use; -O3 cannot see that
    const char *key;
    json_t *v;
    json_object_foreach(vocab, key, v) {
        if (read_id(p, v, "model.vocab entry", key, &id)) return -1;
        if (id > max_id) max_id = id;
    }
    size_t i;
    json_array_foreach(added, i, v) {
        const char *content = json_string_value(json_object_get(v, "content"));
        if (!content) return pl_fail_code(PL_ERR_NOT_FOUND, "%s: added_tokens[%zu] has no content string", p->path, i);
        if (read_id(p, json_object_get(v, "id"), "added token", content, &id)) return -1;
        if (id > max_id) max_id = id;
    }
    // Ids nobody named get placeholder tokens; a few holes are normal, a vocabulary of mostly holes
    // is a hostile file (one entry with id 16777215 would cost 16M placeholders): bound the holes
    // by the entries the file actually has.
    int64_t n_named = (int64_t)json_object_size(vocab) + (int64_t)json_array_size(added);
    if ((int64_t)max_id + 1 > 2 * n_named + 1024)
        return pl_fail_code(
            PL_ERR_FORMAT,
            "%s: model.vocab uses ids up to %d but names only %lld tokens (at most %lld unnamed ids allowed)", p->path,
            max_id, (long long)n_named, (long long)n_named + 1024);
    p->n_vocab = max_id + 1;
    p->tokens = calloc((size_t)p->n_vocab, sizeof *p->tokens);
    p->owned = calloc((size_t)p->n_vocab, sizeof *p->owned);
    p->types = malloc((size_t)p->n_vocab * sizeof *p->types);
    for (int k = 0; k < p->n_vocab; k++) p->types[k] = PL_TOKTYPE_NORMAL;
    json_object_foreach(vocab, key, v) {
        id = (int32_t)json_integer_value(v);
        if (p->tokens[id])
            return pl_fail_code(PL_ERR_FORMAT, "%s: model.vocab gives id %d to both \"%s\" and \"%s\"", p->path, id,
                                p->tokens[id], key);
        p->tokens[id] = key;
    }
    json_array_foreach(added, i, v) {  // an added token overrides the model's entry for its id
        id = (int32_t)json_integer_value(json_object_get(v, "id"));
        p->tokens[id] = json_string_value(json_object_get(v, "content"));
        p->types[id] = json_is_true(json_object_get(v, "special")) ? PL_TOKTYPE_CONTROL : PL_TOKTYPE_USER;
    }
    for (int k = 0; k < p->n_vocab; k++) {
        if (p->tokens[k]) continue;
        char buf[32];
        snprintf(buf, sizeof buf, "<unused_id_%d>", k);  // a hole in the ids: give it a name nobody types
        p->tokens[k] = p->owned[k] = strdup(buf);
        p->types[k] = PL_TOKTYPE_UNUSED;
    }
    return 0;
}

static int read_merges(hf_parts *p, json_t *model) {
    json_t *merges = json_object_get(model, "merges");
    if (!merges) merges = json_array();  // a vocabulary of single bytes needs no merges
    else json_incref(merges);
    int rc = 0;
    if (!json_is_array(merges)) {
        rc = pl_fail_code(PL_ERR_FORMAT, "%s: model.merges is not an array", p->path);
        goto done;
    }
    p->merges = calloc(json_array_size(merges) + 1, sizeof *p->merges);
    size_t i;
    json_t *m;
    json_array_foreach(merges, i, m) {
        const char *a, *b;
        if (json_is_string(m)) {
            const char *s = json_string_value(m);
            if (!strchr(s, ' ')) {
                rc = pl_fail_code(PL_ERR_FORMAT, "%s: model.merges[%zu] \"%s\" is not \"left right\"", p->path, i, s);
                goto done;
            }
            p->merges[p->n_merges++] = strdup(s);
            continue;
        }
        if (!json_is_array(m) || json_array_size(m) != 2 || !(a = json_string_value(json_array_get(m, 0))) ||
            !(b = json_string_value(json_array_get(m, 1)))) {
            rc = pl_fail_code(PL_ERR_FORMAT, "%s: model.merges[%zu] is neither \"left right\" nor [left, right]",
                              p->path, i);
            goto done;
        }
        size_t la = strlen(a), lb = strlen(b);
        char *s = malloc(la + lb + 2);
        memcpy(s, a, la);
        s[la] = ' ';
        memcpy(s + la + 1, b, lb + 1);
        p->merges[p->n_merges++] = s;
    }
done:
    json_decref(merges);
    return rc;
}

// A Split pattern {"String": s} matches s literally: escape every ASCII punctuation character.
static char *literal_pattern(const char *s) {
    char *out = malloc(2 * strlen(s) + 1), *o = out;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x80 && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) *o++ = '\\';
        *o++ = *s;
    }
    *o = '\0';
    return out;
}

static int read_pre_tokenizer(hf_parts *p, json_t *pre) {
    if (!pre || json_is_null(pre))
        return pl_fail_code(PL_ERR_FORMAT,
                            "%s: no pre_tokenizer; only byte-level BPE (a ByteLevel pre-tokenizer) is supported",
                            p->path);
    json_t *list = pre;
    bool single = strcmp(type_of(pre), "Sequence") != 0;
    if (!single) list = json_object_get(pre, "pretokenizers");
    if (!single && !json_is_array(list))
        return pl_fail_code(PL_ERR_NOT_FOUND, "%s: pre_tokenizer Sequence has no pretokenizers array", p->path);
    size_t n = single ? 1 : json_array_size(list);
    bool byte_level = false, byte_level_regex = false;
    const char *split_pattern = NULL;
    bool split_literal = false;
    for (size_t i = 0; i < n; i++) {
        json_t *item = single ? pre : json_array_get(list, i);
        const char *type = type_of(item);
        if (!strcmp(type, "ByteLevel")) {
            json_t *prefix = json_object_get(item, "add_prefix_space"), *use_regex = json_object_get(item, "use_regex");
            byte_level = true;
            p->add_prefix_space = prefix ? json_is_true(prefix) : true;  // the library's defaults
            byte_level_regex = use_regex ? json_is_true(use_regex) : true;
        } else if (!strcmp(type, "Split")) {
            json_t *pattern = json_object_get(item, "pattern");
            const char *behavior = json_string_value(json_object_get(item, "behavior"));
            if (split_pattern)
                return pl_fail_code(PL_ERR_CORRUPT, "%s: pre_tokenizer has more than one Split (not supported)",
                                    p->path);
            if ((split_pattern = json_string_value(json_object_get(pattern, "Regex")))) split_literal = false;
            else if ((split_pattern = json_string_value(json_object_get(pattern, "String")))) split_literal = true;
            else
                return pl_fail_code(PL_ERR_NOT_FOUND, "%s: pre_tokenizer Split has no pattern.Regex or pattern.String",
                                    p->path);
            if (!behavior || strcmp(behavior, "Isolated") != 0)
                return pl_fail_code(PL_ERR_FORMAT,
                                    "%s: pre_tokenizer Split behavior \"%s\" is not supported (only Isolated)", p->path,
                                    behavior ? behavior : "(none)");
            if (json_is_true(json_object_get(item, "invert")))
                return pl_fail_code(PL_ERR_FORMAT, "%s: pre_tokenizer Split with invert=true is not supported",
                                    p->path);
        } else {
            return pl_fail_code(PL_ERR_FORMAT,
                                "%s: pre_tokenizer \"%s\" is not supported (byte-level BPE takes ByteLevel, optionally "
                                "after one Split)",
                                p->path, type);
        }
    }
    if (!byte_level)
        return pl_fail_code(PL_ERR_NOT_FOUND,
                            "%s: pre_tokenizer has no ByteLevel step; only byte-level BPE is supported", p->path);
    if (split_pattern && byte_level_regex)
        return pl_fail_code(PL_ERR_FORMAT,
                            "%s: pre_tokenizer splits twice (Split and ByteLevel use_regex=true); not supported",
                            p->path);
    if (split_pattern && p->add_prefix_space)
        return pl_fail_code(PL_ERR_FORMAT, "%s: ByteLevel add_prefix_space=true after a Split is not supported",
                            p->path);
    if (split_pattern) p->regex = split_literal ? literal_pattern(split_pattern) : strdup(split_pattern);
    else if (byte_level_regex) p->regex = strdup(GPT2_PATTERN);
    return 0;
}

static int check_normalizer_and_decoder(const hf_parts *p, json_t *root) {
    json_t *norm = json_object_get(root, "normalizer");
    if (norm && !json_is_null(norm)) {
        const char *type = type_of(norm);
        bool empty_sequence = !strcmp(type, "Sequence") && json_array_size(json_object_get(norm, "normalizers")) == 0;
        // NFC is accepted without being applied: it changes only text that is not already NFC.
        if (!empty_sequence && strcmp(type, "NFC") != 0)
            return pl_fail_code(PL_ERR_FORMAT, "%s: normalizer \"%s\" is not supported", p->path, type);
    }
    json_t *dec = json_object_get(root, "decoder");
    if (dec && !json_is_null(dec)) {
        const char *type = type_of(dec);
        bool ok = !strcmp(type, "ByteLevel");
        if (!strcmp(type, "Sequence")) {
            size_t i;
            json_t *d;
            json_array_foreach(json_object_get(dec, "decoders"), i, d) ok = ok || !strcmp(type_of(d), "ByteLevel");
        }
        if (!ok)
            return pl_fail_code(PL_ERR_FORMAT, "%s: decoder \"%s\" is not byte-level (only ByteLevel is supported)",
                                p->path, type);
    }
    return 0;
}

// The token a post-processor template puts first (BOS) or last (EOS) in a single sequence.
static int32_t template_special(const hf_parts *p, json_t *proc, bool first) {
    json_t *single = json_object_get(proc, "single");
    size_t n = json_array_size(single);
    if (n == 0) return -1;
    json_t *piece = json_object_get(json_array_get(single, first ? 0 : n - 1), "SpecialToken");
    const char *name = json_string_value(json_object_get(piece, "id"));
    if (!name) return -1;
    json_t *ids = json_object_get(json_object_get(json_object_get(proc, "special_tokens"), name), "ids");
    if (json_array_size(ids) == 1 && json_is_integer(json_array_get(ids, 0))) {
        json_int_t id = json_integer_value(json_array_get(ids, 0));
        return id >= 0 && id < p->n_vocab ? (int32_t)id : -1;
    }
    return lookup_token(p, name);
}

static void read_post_processor(hf_parts *p, json_t *proc) {
    if (!proc || json_is_null(proc)) return;
    if (!strcmp(type_of(proc), "Sequence")) {
        size_t i;
        json_t *item;
        json_array_foreach(json_object_get(proc, "processors"), i, item) read_post_processor(p, item);
        return;
    }
    if (!strcmp(type_of(proc), "TemplateProcessing")) {
        int32_t bos = template_special(p, proc, true);
        if (bos >= 0) p->bos = bos, p->add_bos = true;
        int32_t eos = template_special(p, proc, false);
        if (eos >= 0 && eos != bos) p->eos = eos;
    } else if (!strcmp(type_of(proc), "RobertaProcessing") || !strcmp(type_of(proc), "BertProcessing")) {
        json_t *cls = json_object_get(proc, "cls"), *sep = json_object_get(proc, "sep");
        if (json_is_integer(json_array_get(cls, 1))) p->bos = (int32_t)json_integer_value(json_array_get(cls, 1)), p->add_bos = true;
        if (json_is_integer(json_array_get(sep, 1))) p->eos = (int32_t)json_integer_value(json_array_get(sep, 1));
        if (p->bos >= p->n_vocab) p->bos = -1, p->add_bos = false;
        if (p->eos >= p->n_vocab) p->eos = -1;
    }
}

// tokenizer_config.json beside tokenizer.json (optional) names bos_token / eos_token / add_bos_token.
static void read_tokenizer_config(hf_parts *p) {
    const char *slash = strrchr(p->path, '/');
    size_t dir_len = slash ? (size_t)(slash - p->path + 1) : 0;
    char *cfg_path = malloc(dir_len + sizeof "tokenizer_config.json");
    memcpy(cfg_path, p->path, dir_len);
    strcpy(cfg_path + dir_len, "tokenizer_config.json");
    json_t *cfg = json_load_file(cfg_path, 0, NULL);
    free(cfg_path);
    if (!json_is_object(cfg)) {
        json_decref(cfg);
        return;
    }
    const char *names[2] = {"bos_token", "eos_token"};
    for (int k = 0; k < 2; k++) {
        json_t *v = json_object_get(cfg, names[k]);
        const char *text = json_is_string(v) ? json_string_value(v) : json_string_value(json_object_get(v, "content"));
        int32_t id = lookup_token(p, text);
        if (id >= 0) *(k == 0 ? &p->bos : &p->eos) = id;
    }
    json_t *add_bos = json_object_get(cfg, "add_bos_token");
    if (json_is_boolean(add_bos)) p->add_bos = json_is_true(add_bos) && p->bos >= 0;
    json_decref(cfg);
}

pl_tokenizer *pl_tokenizer_load_hf_json(const char *path) {
    hf_parts p = {.path = path, .bos = -1, .eos = -1};
    pl_tokenizer *t = NULL;
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        pl_fail_code(PL_ERR_IO, "%s: cannot read tokenizer.json (line %d: %s)", path, jerr.line, jerr.text);
        return NULL;
    }
    json_t *model = json_object_get(root, "model");
    if (!json_is_object(root) || !json_is_object(model)) {
        pl_fail_code(PL_ERR_FORMAT, "%s: no \"model\" object; not a Hugging Face tokenizer.json", path);
        goto done;
    }
    const char *type = json_string_value(json_object_get(model, "type"));
    if (type && strcmp(type, "BPE") != 0) {
        pl_fail_code(PL_ERR_FORMAT, "%s: model.type is \"%s\"; only byte-level BPE tokenizers are supported", path,
                     type);
        goto done;
    }
    if (json_is_true(json_object_get(model, "byte_fallback"))) {
        pl_fail_code(PL_ERR_FORMAT,
                     "%s: model.byte_fallback=true is SentencePiece-style BPE, not byte-level; use the GGUF file",
                     path);
        goto done;
    }
    if (json_is_true(json_object_get(model, "ignore_merges"))) {
        pl_fail_code(PL_ERR_FORMAT, "%s: model.ignore_merges=true (Llama 3 style) is not supported yet", path);
        goto done;
    }
    const char *affix[2] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int k = 0; k < 2; k++) {
        const char *s = json_string_value(json_object_get(model, affix[k]));
        if (s && *s) {
            pl_fail_code(PL_ERR_FORMAT, "%s: model.%s \"%s\" is not supported by byte-level BPE", path, affix[k], s);
            goto done;
        }
    }
    if (read_vocab(&p, model, json_object_get(root, "added_tokens")) || read_merges(&p, model) ||
        read_pre_tokenizer(&p, json_object_get(root, "pre_tokenizer")) || check_normalizer_and_decoder(&p, root))
        goto done;
    read_post_processor(&p, json_object_get(root, "post_processor"));
    if (p.eos < 0) {  // no template said: fall back to the names these families use
        const char *eos_names[] = {"<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>"};
        for (size_t k = 0; k < sizeof eos_names / sizeof *eos_names && p.eos < 0; k++) p.eos = lookup_token(&p, eos_names[k]);
    }
    read_tokenizer_config(&p);

    t = pl_tokenizer_new_bpe(p.n_vocab, p.tokens, p.types, p.n_merges, (const char *const *)p.merges, "gpt2", p.bos,
                             p.eos, p.add_bos);
    if (!t) {
        char why[512];
        snprintf(why, sizeof why, "%s", pl_errmsg());
        pl_fail_code(PL_ERR_FORMAT, "%s: %s", path, why);
        goto done;
    }
    if (pl_bpe_set_regex(t, p.regex, path) != 0) {
        pl_tokenizer_free(t);
        t = NULL;
        goto done;
    }
    const char *name = !p.regex ? "none" : !strcmp(p.regex, GPT2_PATTERN) ? "gpt2" : !strcmp(p.regex, QWEN2_PATTERN) ? "qwen2" : "custom";
    snprintf(t->pretokenizer, sizeof t->pretokenizer, "%s", name);
    t->add_space_prefix = p.add_prefix_space;
    t->unk = lookup_token(&p, json_string_value(json_object_get(model, "unk_token")));

done:
    for (int k = 0; k < p.n_vocab && p.owned; k++) free(p.owned[k]);
    for (int k = 0; k < p.n_merges; k++) free(p.merges[k]);
    free(p.owned);
    free(p.merges);
    free(p.tokens);
    free(p.types);
    free(p.regex);
    json_decref(root);
    return t;
}
