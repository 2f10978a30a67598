// Byte-level BPE: the GPT-2 byte alphabet against Python's bytes_to_unicode() construction, merges
// worked by hand on tiny vocabularies, exact decoding of UTF-8 split across tokens, and clear errors
// for bad tokenizer.json files. Run as `test_bpe encode TOKENIZER_JSON|MODEL.gguf STRINGS_JSON` it
// prints {"ids": [[...]...], "decoded": [...]} so tests/py_bpe_tokenizers.sh can compare with Hugging Face.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/error.h"
#include "runtime/model/model.h"
#include "runtime/tokenizer/bpe_internal.h"
#include "runtime/tokenizer/tokenizer.h"
#include "tests/support/test_support.h"

// ---- helpers -------------------------------------------------------------------------------------

// UTF-8 of one code point (up to 4 bytes + NUL).
static void utf8_put(uint32_t cp, char out[5]) {
    if (cp < 0x80) out[0] = (char)cp, out[1] = 0;
    else if (cp < 0x800) out[0] = (char)(0xc0 | cp >> 6), out[1] = (char)(0x80 | (cp & 0x3f)), out[2] = 0;
    else out[0] = (char)(0xe0 | cp >> 12), out[1] = (char)(0x80 | ((cp >> 6) & 0x3f)), out[2] = (char)(0x80 | (cp & 0x3f)), out[3] = 0;
}

// A vocabulary of the 256 byte symbols (ids 0..255 in byte order) followed by `extra` tokens.
typedef struct {
    char *text[512];
    int32_t type[512];
    int n;
} tiny_vocab;

static void tiny_vocab_init(tiny_vocab *v) {
    v->n = 0;
    for (int b = 0; b < 256; b++) {
        v->text[v->n] = malloc(5);
        utf8_put(pl_bpe_byte_to_codepoint((uint8_t)b), v->text[v->n]);
        v->type[v->n++] = 1;
    }
}

static int32_t tiny_vocab_add(tiny_vocab *v, const char *text, int32_t type) {
    v->text[v->n] = strdup(text);
    v->type[v->n] = type;
    return v->n++;
}

static void tiny_vocab_free(tiny_vocab *v) {
    for (int i = 0; i < v->n; i++) free(v->text[i]);
}

static pl_tokenizer *tiny_tokenizer(tiny_vocab *v, int n_merges, const char *const *merges, const char *pre, int32_t bos,
                                    bool add_bos) {
    pl_tokenizer *t = pl_tokenizer_new_bpe(v->n, (const char *const *)v->text, v->type, n_merges, merges, pre, bos, -1, add_bos);
    if (!t) fprintf(stderr, "new_bpe: %s\n", pl_errmsg());
    assert_non_null(t);
    return t;
}

static void assert_encodes(const pl_tokenizer *t, const char *text, bool add_bos, int n_want, const int32_t *want) {
    int32_t *ids = NULL;
    int n = pl_tokenizer_encode(t, text, add_bos, &ids);
    if (n != n_want || memcmp(ids, want, (size_t)n_want * sizeof *ids) != 0) {
        fprintf(stderr, "encode(\"%s\"): got", text);
        for (int i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, ", want");
        for (int i = 0; i < n_want; i++) fprintf(stderr, " %d", want[i]);
        fprintf(stderr, "\n");
    }
    assert_int_equal(n, n_want);
    assert_memory_equal(ids, want, (size_t)n_want * sizeof *ids);
    free(ids);
}

// ---- tests ---------------------------------------------------------------------------------------

// Python's construction, written as GPT-2's encoder.py does: list the printable bytes, then give the
// rest 256 + n in byte order.
static void test_byte_alphabet_matches_gpt2(void **state) {
    (void)state;
    uint32_t cs[256];
    int bs[256], n_bs = 0;
    for (int b = '!'; b <= '~'; b++) bs[n_bs++] = b;
    for (int b = 0xa1; b <= 0xac; b++) bs[n_bs++] = b;
    for (int b = 0xae; b <= 0xff; b++) bs[n_bs++] = b;
    assert_int_equal(n_bs, 188);
    for (int i = 0; i < n_bs; i++) cs[bs[i]] = (uint32_t)bs[i];
    int n = 0;
    for (int b = 0; b < 256; b++) {
        bool listed = false;
        for (int i = 0; i < 188; i++) listed = listed || bs[i] == b;
        if (!listed) cs[b] = 256 + (uint32_t)n++;
    }
    assert_int_equal(n, 68);
    for (int b = 0; b < 256; b++) {
        assert_int_equal(pl_bpe_byte_to_codepoint((uint8_t)b), cs[b]);
        assert_int_equal(pl_bpe_codepoint_to_byte(cs[b]), b);
    }
    assert_int_equal(pl_bpe_byte_to_codepoint(' '), 0x120);   // "Ġ"
    assert_int_equal(pl_bpe_byte_to_codepoint('\n'), 0x10a);  // "Ċ"
    uint32_t outside[] = {0x20, 0x7f, 0xa0, 0xad, 0x144, 0x2581, 0x1f642};
    for (size_t i = 0; i < sizeof outside / sizeof *outside; i++) assert_int_equal(pl_bpe_codepoint_to_byte(outside[i]), -1);
}

// "hello" merges h+e, l+l, he+ll, hell+o in rank order; " hello" then merges Ġ+hello.
static void test_hand_worked_merges(void **state) {
    (void)state;
    tiny_vocab v;
    tiny_vocab_init(&v);
    tiny_vocab_add(&v, "he", 1);
    tiny_vocab_add(&v, "ll", 1);
    tiny_vocab_add(&v, "hell", 1);
    int32_t hello = tiny_vocab_add(&v, "hello", 1);
    int32_t space_hello = tiny_vocab_add(&v, "\xc4\xa0hello", 1);
    const char *merges[] = {"h e", "l l", "he ll", "hell o", "\xc4\xa0 hello"};
    pl_tokenizer *t = tiny_tokenizer(&v, 5, merges, "gpt2", -1, false);
    assert_encodes(t, "hello hello", false, 2, (int32_t[]){hello, space_hello});
    // "hellx": h e l l x -> he l l x -> he ll x -> hell x ; no rank for "hell x".
    assert_encodes(t, "hellx", false, 2, (int32_t[]){hello - 1, 'x'});
    // The regex keeps "'s" and digits apart from letters: 'hello's 42' -> hello ' s Ġ 4 2
    assert_encodes(t, "hello's 42", false, 6, (int32_t[]){hello, '\'', 's', ' ', '4', '2'});
    pl_tokenizer_free(t);
    tiny_vocab_free(&v);
}

// The rank decides: with "b c" before "a b", "abc" is a + bc; with the order swapped, ab + c.
static void test_merge_rank_order(void **state) {
    (void)state;
    tiny_vocab v;
    tiny_vocab_init(&v);
    int32_t ab = tiny_vocab_add(&v, "ab", 1), bc = tiny_vocab_add(&v, "bc", 1);
    const char *bc_first[] = {"b c", "a b"}, *ab_first[] = {"a b", "b c"};
    pl_tokenizer *t = tiny_tokenizer(&v, 2, bc_first, "gpt2", -1, false);
    assert_encodes(t, "abc", false, 2, (int32_t[]){'a', bc});
    pl_tokenizer_free(t);
    t = tiny_tokenizer(&v, 2, ab_first, "gpt2", -1, false);
    assert_encodes(t, "abc", false, 2, (int32_t[]){ab, 'c'});
    pl_tokenizer_free(t);
    tiny_vocab_free(&v);
}

// GPT-2 keeps a run of digits in one pre-token (so "1 2" merges); Qwen2 splits every digit.
static void test_gpt2_vs_qwen2_digits(void **state) {
    (void)state;
    tiny_vocab v;
    tiny_vocab_init(&v);
    int32_t twelve = tiny_vocab_add(&v, "12", 1);
    const char *merges[] = {"1 2"};
    pl_tokenizer *gpt2 = tiny_tokenizer(&v, 1, merges, "gpt2", -1, false);
    pl_tokenizer *qwen2 = tiny_tokenizer(&v, 1, merges, "qwen2", -1, false);
    assert_encodes(gpt2, "1212", false, 2, (int32_t[]){twelve, twelve});
    assert_encodes(qwen2, "1212", false, 4, (int32_t[]){'1', '2', '1', '2'});
    pl_tokenizer_free(gpt2);
    pl_tokenizer_free(qwen2);
    tiny_vocab_free(&v);
    assert_null(pl_tokenizer_new_bpe(1, (const char *[]){"a"}, NULL, 0, NULL, "falcon", -1, -1, false));
    assert_non_null(strstr(pl_errmsg(), "falcon"));
}

// Special tokens are matched literally, longest first, never split, and BOS only when asked for.
static void test_special_tokens_and_bos(void **state) {
    (void)state;
    tiny_vocab v;
    tiny_vocab_init(&v);
    int32_t eot = tiny_vocab_add(&v, "<|endoftext|>", 3);
    int32_t x = tiny_vocab_add(&v, "<x>", 4), xy = tiny_vocab_add(&v, "<x>y", 4);
    pl_tokenizer *t = tiny_tokenizer(&v, 0, NULL, "gpt2", eot, true);
    assert_encodes(t, "a<|endoftext|>b", false, 3, (int32_t[]){'a', eot, 'b'});
    assert_encodes(t, "<x>y<x>", true, 3, (int32_t[]){eot, xy, x});
    assert_encodes(t, "<|endoftext", false, 11, (int32_t[]){'<', '|', 'e', 'n', 'd', 'o', 'f', 't', 'e', 'x', 't'});
    char *text = pl_tokenizer_decode(t, (int32_t[]){eot, 'a', x, 'b'}, 4);
    assert_string_equal(text, "a<x>b");  // control tokens are dropped, user-defined ones kept
    free(text);
    pl_tokenizer_free(t);
    t = tiny_tokenizer(&v, 0, NULL, "gpt2", eot, false);  // a model that wants no BOS
    assert_encodes(t, "a", true, 1, (int32_t[]){'a'});
    pl_tokenizer_free(t);
    tiny_vocab_free(&v);
}

// With only byte tokens, "é日🙂" is 2 + 3 + 4 tokens, each half a character; decoding puts the exact
// bytes back, and decoding a prefix gives exactly the partial bytes.
static void test_utf8_split_across_tokens(void **state) {
    (void)state;
    tiny_vocab v;
    tiny_vocab_init(&v);
    pl_tokenizer *t = tiny_tokenizer(&v, 0, NULL, "qwen2", -1, false);
    const char *text = "\xc3\xa9\xe6\x97\xa5\xf0\x9f\x99\x82";
    int32_t want[9];
    for (int i = 0; i < 9; i++) want[i] = (unsigned char)text[i];
    assert_encodes(t, text, false, 9, want);
    char *back = pl_tokenizer_decode(t, want, 9);
    assert_string_equal(back, text);
    free(back);
    back = pl_tokenizer_decode(t, want, 3);
    assert_int_equal(strlen(back), 3);
    assert_memory_equal(back, "\xc3\xa9\xe6", 3);
    free(back);
    size_t len;
    const char *piece = pl_tokenizer_piece_bytes(t, 0xf0, &len);
    assert_int_equal(len, 1);
    assert_int_equal((unsigned char)piece[0], 0xf0);
    int32_t *ids;
    assert_int_equal(pl_tokenizer_encode(t, "ok\xe6\x97", false, &ids), -1);  // truncated character
    assert_non_null(strstr(pl_errmsg(), "offset 2"));
    pl_tokenizer_free(t);
    tiny_vocab_free(&v);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void assert_load_fails(const char *dir, const char *name, const char *content, const char *needle) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (content) write_file(path, content);
    pl_tokenizer *t = pl_tokenizer_load_hf_json(path);
    if (t || !strstr(pl_errmsg(), needle) || !strstr(pl_errmsg(), path))
        fprintf(stderr, "load %s: \"%s\" (want it to name the file and say \"%s\")\n", name, pl_errmsg(), needle);
    assert_null(t);
    assert_non_null(strstr(pl_errmsg(), path));
    assert_non_null(strstr(pl_errmsg(), needle));
}

#define GOOD_PRE "\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}"

static void test_bad_tokenizer_json(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    assert_load_fails(dir, "missing.json", NULL, "No such file");
    assert_load_fails(dir, "notjson.json", "{\"model\": {\"type\": \"BPE\",", "line");
    assert_load_fails(dir, "wordpiece.json", "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}", "WordPiece");
    assert_load_fails(dir, "novocab.json", "{" GOOD_PRE ", \"model\": {\"type\": \"BPE\", \"merges\": []}}", "model.vocab");
    assert_load_fails(dir, "badid.json", "{" GOOD_PRE ", \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -3}}}", "\"a\"");
    assert_load_fails(dir, "badmerge.json",
                      "{" GOOD_PRE ", \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"ab\"]}}", "merges[0]");
    assert_load_fails(dir, "metaspace.json",
                      "{\"pre_tokenizer\": {\"type\": \"Metaspace\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}",
                      "Metaspace");
    assert_load_fails(dir, "badregex.json",
                      "{\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": "
                      "{\"Regex\": \"(unclosed\"}, \"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", "
                      "\"add_prefix_space\": false, \"use_regex\": false}]}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}",
                      "regex");
    // Issue 10 #5: one id of 16777215 in a 96-byte file used to cost 16M placeholder tokens (14 s,
    // 2.7 GB) before failing; the holes are bounded by the entries the file names.
    const char *hostile = "{" GOOD_PRE ", \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 16777215}}}";
    assert_load_fails(dir, "hostile_id.json", hostile, "model.vocab uses ids up to 16777215 but names only 1 tokens");
    assert_null(strchr(pl_errmsg(), '\n'));
}

// A minimal valid file: ids with a hole, merges in the pair form, a special token, a BOS template.
static void test_small_tokenizer_json(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizer.json", test_tmpdir());
    write_file(path, "{\"added_tokens\": [{\"id\": 6, \"content\": \"<s>\", \"special\": true}],"
                     " \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\","
                     " \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], \"special_tokens\": {\"<s>\": {\"id\":"
                     " \"<s>\", \"ids\": [6], \"tokens\": [\"<s>\"]}}}," GOOD_PRE ", \"decoder\": {\"type\": \"ByteLevel\"},"
                     " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2, \"\\u0120\": 3, \"\\u0120ab\": 5},"
                     " \"merges\": [[\"a\", \"b\"], [\"\\u0120\", \"ab\"]]}}");
    pl_tokenizer *t = pl_tokenizer_load_hf_json(path);
    if (!t) fprintf(stderr, "%s\n", pl_errmsg());
    assert_non_null(t);
    assert_int_equal(pl_tokenizer_vocab_size(t), 7);
    assert_int_equal(pl_tokenizer_bos(t), 6);
    assert_encodes(t, "ab ab<s>a", true, 5, (int32_t[]){6, 2, 5, 6, 0});
    char *text = pl_tokenizer_decode(t, (int32_t[]){6, 2, 5, 0}, 4);
    assert_string_equal(text, "ab aba");
    free(text);
    pl_tokenizer_free(t);
}

// ---- the reference-comparison mode ---------------------------------------------------------------

static int encode_strings(const char *tokenizer_path, const char *strings_path) {
    size_t plen = strlen(tokenizer_path);
    pl_model *model = NULL;  // a GGUF file: its tokenizer.ggml.* tokenizer, owned by the model
    pl_tokenizer *t = NULL;
    if (plen >= 5 && strcmp(tokenizer_path + plen - 5, ".gguf") == 0) {
        if (pl_model_open(&model, tokenizer_path) == 0 && !(t = model->tokenizer))
            pl_fail("%s: has no tokenizer", tokenizer_path);
    } else {
        t = pl_tokenizer_load_hf_json(tokenizer_path);
    }
    if (!t) {
        fprintf(stderr, "test_bpe: %s\n", pl_errmsg());
        pl_model_free(model);
        return 1;
    }
    json_error_t jerr;
    json_t *strings = json_load_file(strings_path, 0, &jerr);
    if (!json_is_array(strings)) {
        fprintf(stderr, "test_bpe: %s: want a JSON array of strings (line %d: %s)\n", strings_path, jerr.line, jerr.text);
        if (model) pl_model_free(model);
        else pl_tokenizer_free(t);
        return 1;
    }
    json_t *all_ids = json_array(), *decoded = json_array();
    size_t i;
    json_t *s;
    int rc = 0;
    json_array_foreach(strings, i, s) {
        int32_t *ids;
        int n = pl_tokenizer_encode(t, json_string_value(s), false, &ids);
        if (n < 0) {
            fprintf(stderr, "test_bpe: string %zu: %s\n", i, pl_errmsg());
            rc = 1;
            break;
        }
        json_t *row = json_array();
        for (int k = 0; k < n; k++) json_array_append_new(row, json_integer(ids[k]));
        json_array_append_new(all_ids, row);
        char *text = pl_tokenizer_decode(t, ids, n);
        json_array_append_new(decoded, json_string(text));
        free(text);
        free(ids);
    }
    if (rc == 0) {
        json_t *out = json_pack("{s:o, s:o}", "ids", all_ids, "decoded", decoded);
        json_dumpf(out, stdout, JSON_COMPACT);
        putchar('\n');
        json_decref(out);
    } else {
        json_decref(all_ids);
        json_decref(decoded);
    }
    json_decref(strings);
    if (model) pl_model_free(model);
    else pl_tokenizer_free(t);
    return rc;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "encode") == 0) return encode_strings(argv[2], argv[3]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_byte_alphabet_matches_gpt2), cmocka_unit_test(test_hand_worked_merges),
        cmocka_unit_test(test_merge_rank_order),           cmocka_unit_test(test_gpt2_vs_qwen2_digits),
        cmocka_unit_test(test_special_tokens_and_bos),     cmocka_unit_test(test_utf8_split_across_tokens),
        cmocka_unit_test(test_bad_tokenizer_json),         cmocka_unit_test(test_small_tokenizer_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
