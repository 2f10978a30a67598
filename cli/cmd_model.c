// Model commands: info, tokenize, generate, run.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli_opts.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "runtime/base/error.h"
#include "runtime/base/npy.h"
#include "runtime/cache.h"
#include "runtime/hooks.h"
#include "runtime/session.h"
#include "runtime/tokenizer/tokenizer.h"

static const char model_help[] = "a .gguf file or a Hugging Face folder (config.json + *.safetensors)";

static const char *rope_name(pl_rope_style r) {
    return r == PL_ROPE_ADJACENT ? "adjacent pairs" : r == PL_ROPE_NEOX ? "half-split (NeoX)" : "none";
}

// ---------------------------------------------------------------- info
int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    bool hooks = false, json = false;
    const cli_option opts[] = {
        {"--hooks", CLI_FLAG, &hooks, .help = "also list every hook point name"},
        {"--json", CLI_FLAG, &json, .help = "print one JSON object (with \"hooks\": [...] if --hooks)"},
        {0}};
    const cli_positional pos[] = {{"MODEL", &path, model_help, true}, {0}};
    const cli_spec spec = {"info", opts, pos, .summary = "Print a model's architecture, sizes, tokenizer and tensor table."};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    pl_model *m;
    if (pl_model_open(&m, path) != 0) return cli_fail();
    const pl_config *c = &m->config;
    if (json) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:o, s:o, s:s, s:b, s:I, s:i}",
                              "path", m->path, "format", m->format, "arch", c->arch_name, "d_model", c->d_model,
                              "n_layers", c->n_layers, "n_heads", c->n_heads, "n_kv_heads", c->n_kv_heads, "head_dim",
                              c->head_dim, "d_ff", c->d_ff, "vocab_size", c->vocab_size, "context_length",
                              c->context_length, "norm_eps", cli_json_float(c->norm_eps), "rope_theta", cli_json_float(c->rope_theta),
                              "rope", rope_name(c->rope_style), "tied_embeddings", (int)c->tied_embeddings, "n_params",
                              (json_int_t)pl_model_n_params(m), "n_tensors", m->n_tensors);
        if (j && hooks) {
            pl_hooks *h = pl_hooks_new(c);
            const char **names;
            int n = pl_hooks_list(h, &names);
            json_t *a = json_array();
            for (int i = 0; i < n; i++) json_array_append_new(a, json_string(names[i]));
            json_object_set_new(j, "hooks", a);
            pl_hooks_free(h);
        }
        pl_model_free(m);
        return cli_print_json(j);
    }
    printf("model        %s (%s)\n", m->path, m->format);
    printf("architecture %s\n", c->arch_name);
    printf("parameters   %lld\n", (long long)pl_model_n_params(m));
    printf("d_model %d, layers %d, heads %d, kv heads %d, head_dim %d, ffn %d, vocab %d, context %d\n", c->d_model,
           c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->d_ff, c->vocab_size, c->context_length);
    printf("norm eps %g, rope %s theta %g, qkv bias %s, qk norm %s, tied embeddings %s\n", c->norm_eps,
           rope_name(c->rope_style), c->rope_theta, c->qkv_bias ? "yes" : "no", c->qk_norm ? "yes" : "no",
           c->tied_embeddings ? "yes" : "no");
    if (m->tokenizer)
        printf("tokenizer    %s, %d tokens, bos %d, eos %d\n",
               pl_tokenizer_get_kind(m->tokenizer) == PL_TOK_SPM ? "sentencepiece BPE" : "byte-level BPE",
               pl_tokenizer_vocab_size(m->tokenizer), pl_tokenizer_bos(m->tokenizer), pl_tokenizer_eos(m->tokenizer));
    else printf("tokenizer    none\n");
    printf("\n%-40s %-5s %-22s %12s\n", "tensor", "type", "shape", "bytes");
    for (int i = 0; i < m->n_tensors; i++) {
        const pl_tensor_info *t = &m->tensors[i];
        char shape[64] = "[";
        for (int d = 0; d < t->n_dims; d++) {
            char buf[24];
            snprintf(buf, sizeof buf, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
            strncat(shape, buf, sizeof shape - strlen(shape) - 2);
        }
        strcat(shape, "]");
        printf("%-40s %-5s %-22s %12llu\n", t->name, t->dtype, shape, (unsigned long long)t->n_bytes);
    }
    if (hooks) {
        pl_hooks *h = pl_hooks_new(c);
        const char **names;
        int n = pl_hooks_list(h, &names);
        printf("\nhook points (%d):\n", n);
        for (int i = 0; i < n; i++) printf("  %s\n", names[i]);
        pl_hooks_free(h);
    }
    pl_model_free(m);
    return 0;
}

// ---------------------------------------------------------------- tokenize
int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *text = NULL;
    bool json = false, no_bos = false;
    const cli_option opts[] = {
        {"--json", CLI_FLAG, &json, .help = "print {\"ids\": [...], \"pieces\": [...]}"},
        {"--no-bos", CLI_FLAG, &no_bos, .help = "do not prepend the BOS token"},
        {0}};
    const cli_positional pos[] = {{"MODEL", &model, "a model (as for info) or a bare tokenizer.json", true},
                                  {"TEXT", &text, "the text; quote it, and put -- before a text that starts with -", true},
                                  {0}};
    const cli_spec spec = {"tokenize", opts, pos, .summary = "Print the token ids and pieces of TEXT."};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    pl_tokenizer *tok = NULL;
    pl_model *m = NULL;
    size_t plen = strlen(model);
    if (plen >= 14 && strcmp(model + plen - 14, "tokenizer.json") == 0) {  // a bare HF tokenizer file
        tok = pl_tokenizer_load_hf_json(model);
        if (!tok) return cli_fail();
    } else {
        if (pl_model_open(&m, model) != 0) return cli_fail();
        if (!m->tokenizer) {
            pl_fail("%s: has no %stokenizer%s%s", model, m->tokenizer_error[0] ? "usable " : "",
                    m->tokenizer_error[0] ? ": " : "", m->tokenizer_error);
            pl_model_free(m);
            return cli_fail();
        }
        tok = m->tokenizer;
    }
    int32_t *ids = NULL;
    int n = pl_tokenizer_encode(tok, text, !no_bos, &ids);
    int rc = 0;
    if (n < 0) {
        rc = cli_fail();
    } else if (json) {
        json_t *a_ids = json_array(), *a_pieces = json_array();
        for (int i = 0; i < n; i++) {
            const char *t = pl_tokenizer_token_text(tok, ids[i]);
            json_array_append_new(a_ids, json_integer(ids[i]));
            json_array_append_new(a_pieces, cli_json_text(t, strlen(t)));
        }
        rc = cli_print_json(json_pack("{s:o, s:o}", "ids", a_ids, "pieces", a_pieces));
    } else {
        for (int i = 0; i < n; i++) printf("%6d  %s\n", ids[i], pl_tokenizer_token_text(tok, ids[i]));
    }
    free(ids);
    if (m) pl_model_free(m);
    else pl_tokenizer_free(tok);
    return rc;
}

// ---------------------------------------------------------------- generate
typedef struct {
    const pl_tokenizer *tok;
    bool stream;
} stream_ctx;

static bool print_token(int32_t id, int index, void *user) {
    (void)index;
    stream_ctx *c = user;
    if (c->stream && c->tok) {
        size_t len;
        const char *p = pl_tokenizer_piece_bytes(c->tok, id, &len);
        fwrite(p, 1, len, stdout);
        fflush(stdout);
    }
    return true;
}

int cmd_generate(int argc, char **argv) {
    const char *path = NULL, *prompt = NULL, *token_ids = NULL;
    pl_sample_params sp = pl_sample_defaults();
    int64_t max_new = sp.max_new, top_k = sp.top_k, seed = (int64_t)sp.seed;
    double temperature = sp.temperature, top_p = sp.top_p;
    cli_strings stops = {0};
    bool print_ids = false, json = false;
    const cli_option opts[] = {
        {"--prompt", CLI_STRING, &prompt, "TEXT", .help = "the prompt (tokenized with BOS)"},
        {"--token-ids", CLI_STRING, &token_ids, "1,2,3", .help = "the prompt as token ids"},
        CLI_SAMPLING_OPTIONS(max_new, temperature, top_k, top_p, seed, stops),
        {"--ids", CLI_FLAG, &print_ids, .help = "also print the generated ids"},
        {"--json", CLI_FLAG, &json, .help = "print {\"ids\", \"text\", \"logprobs\", \"stop\"}"},
        {0}};
    const cli_positional pos[] = {{"MODEL", &path, model_help, true}, {0}};
    const cli_spec spec = {"generate", opts, pos, "Generate from a prompt (greedy, or sampled with a seed), streaming the text.",
                           .usage = "MODEL (--prompt TEXT | --token-ids 1,2,3) [options]"};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    if ((prompt != NULL) == (token_ids != NULL)) return cli_usage_error("give exactly one of --prompt TEXT or --token-ids 1,2,3");
    sp.max_new = (int)max_new, sp.top_k = (int)top_k, sp.seed = (uint64_t)seed;
    sp.temperature = (float)temperature, sp.top_p = (float)top_p;
    sp.stop_strings = stops.v;
    sp.n_stop_strings = stops.n;
    pl_model *m;
    if (pl_model_open(&m, path) != 0) return cli_fail();
    int32_t *ids = NULL;
    pl_session *s = NULL;
    pl_generation g = {0};
    int rc = 1;
    int n = cli_prompt_ids(m, prompt, token_ids, &ids);
    if (n < 0 || pl_session_open(&s, m, 0) != 0) goto done;
    stream_ctx sc = {m->tokenizer, !json};
    if (!json && m->tokenizer && prompt) fputs(prompt, stdout);
    if (pl_generate(s, ids, n, &sp, print_token, &sc, &g) != 0) goto done;
    static const char *stop_names[] = {"length", "eos", "stop-string", "context"};
    if (json) {
        char *text = m->tokenizer ? pl_tokenizer_decode(m->tokenizer, g.ids, g.n) : strdup("");
        json_t *a_ids = json_array(), *a_lp = json_array();
        for (int i = 0; i < g.n; i++) {
            json_array_append_new(a_ids, json_integer(g.ids[i]));
            json_array_append_new(a_lp, cli_json_float(g.logprobs[i]));
        }
        json_t *j = json_pack("{s:o, s:o, s:o, s:s}", "ids", a_ids, "text", cli_json_text(text ? text : "", text ? strlen(text) : 0),
                              "logprobs", a_lp, "stop", stop_names[g.stop]);
        free(text);
        if (cli_print_json(j) != 0) {
            rc = 1;
            goto quiet;
        }
    } else {
        printf("\n");
        if (print_ids || !m->tokenizer) {
            printf("ids:");
            for (int i = 0; i < g.n; i++) printf("%s%d", i ? "," : " ", g.ids[i]);
            printf("\n");
        }
    }
    rc = 0;
done:
    if (rc) cli_fail();
quiet:
    pl_generation_free(&g);
    pl_session_free(s);
    free(ids);
    pl_model_free(m);
    return rc;
}

// ---------------------------------------------------------------- run
// mkdir -p
static int make_dirs(const char *dir) {
    char path[2048];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) return pl_fail("%s: cannot create directory", path);
        *p = '/';
    }
    if (mkdir(path, 0755) != 0 && errno != EEXIST) return pl_fail("%s: cannot create directory", path);
    return 0;
}


int cmd_run(int argc, char **argv) {
    const char *path = NULL, *prompt = NULL, *token_ids = NULL, *pattern = NULL, *dir = NULL;
    bool json = false;
    const cli_option opts[] = {
        {"--prompt", CLI_STRING, &prompt, "TEXT", .help = "the prompt (tokenized with BOS)"},
        {"--token-ids", CLI_STRING, &token_ids, "1,2,3", .help = "the prompt as token ids"},
        {"--hooks", CLI_STRING, &pattern, "GLOBS", .help = "hook points to dump: comma-separated globs, '*' = every point", .required = true},
        {"--dump", CLI_STRING, &dir, "DIR", .help = "folder for the .npy files (created)", .required = true},
        {"--json", CLI_FLAG, &json, .help = "print {\"dir\", \"n_tokens\", \"hooks\": [{\"name\", \"file\", \"shape\"}]}"},
        {0}};
    const cli_positional pos[] = {{"MODEL", &path, model_help, true}, {0}};
    const cli_spec spec = {
        "run", opts, pos,
        "One forward pass over the prompt; writes DIR/<hook>.npy (float32) for every hook point matching GLOBS\n"
        "(e.g. 'blocks.*.hook_resid_post,logits' or '*'). Shapes: [T, d] residual-like, [T, H, dh] q/k/v/z,\n"
        "[H, T, T] attention scores and pattern, [T, V] logits.",
        .usage = "MODEL (--token-ids 1,2,3 | --prompt TEXT) --hooks GLOBS --dump DIR"};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    if ((prompt != NULL) == (token_ids != NULL)) return cli_usage_error("give exactly one of --prompt TEXT or --token-ids 1,2,3");
    pl_model *m;
    if (pl_model_open(&m, path) != 0) return cli_fail();
    int32_t *ids = NULL;
    pl_cache cache = {0};
    int rc = 1;
    int n = cli_prompt_ids(m, prompt, token_ids, &ids);
    if (n < 0 || pl_run_with_cache(m, ids, n, pattern, &cache) != 0 || make_dirs(dir) != 0) goto done;
    json_t *hooks = json ? json_array() : NULL;
    for (int i = 0; i < cache.n; i++) {
        const pl_cached_hook *h = &cache.hooks[i];
        char file[2048];
        snprintf(file, sizeof file, "%s/%s.npy", dir, h->name);
        if (pl_npy_write_f32(file, h->data, h->ndim, h->shape) != 0) {
            json_decref(hooks);
            goto done;
        }
        if (json) {
            json_t *shape = json_array();
            for (int k = 0; k < h->ndim; k++) json_array_append_new(shape, json_integer(h->shape[k]));
            json_array_append_new(hooks, json_pack("{s:s, s:s, s:o}", "name", h->name, "file", file, "shape", shape));
        }
    }
    if (json) {
        rc = cli_print_json(json_pack("{s:s, s:i, s:o}", "dir", dir, "n_tokens", n, "hooks", hooks));
        goto quiet;
    }
    fprintf(stderr, "wrote %d hook arrays for %d tokens to %s\n", cache.n, n, dir);
    rc = 0;
done:
    if (rc) cli_fail();
quiet:
    pl_cache_free(&cache);
    free(ids);
    pl_model_free(m);
    return rc;
}
