// probelab lens S.db --run R: the logit lens of a stored run (probes/lens/lens.h).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_opts.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "probes/lens/lens.h"
#include "probes/probe_store.h"
#include "runtime/base/error.h"

int cmd_lens(int argc, char **argv) {
    const char *path = NULL, *model = NULL, *target = NULL;
    int64_t run = 0, k = 5, model_id = 0;
    bool json = false;
    const cli_option opts[] = {
        {"--run", CLI_INT, &run, "R", .help = "the run", .required = true, .min = 1, .max = (double)INT64_MAX},
        {"--model", CLI_STRING, &model, "PATH", .help = "the traced model moved elsewhere (its sha256 must match the store's)",
         .def = "the path the store recorded"},
        CLI_MODEL_ID_OPTION(model_id),
        {"--top-k", CLI_INT, &k, "K", .help = "top tokens shown per layer", .def = "5", .min = 1, .max = 100},
        {"--target", CLI_STRING, &target, "TEXT", .help = "rank this answer instead of the gold answer"},
        {"--json", CLI_FLAG, &json, .help = "print {\"run\", \"analysis\", \"position\", \"target\", \"layers\": [...]}"},
        {0}};
    const cli_positional pos[] = {{"S.db", &path, "the store", true}, {0}};
    const cli_spec spec = {
        "lens", opts, pos,
        .summary = "Re-run run R's tokens through the model and read resid_post of every layer through ln_final and the\n"
                   "unembedding. Prints, at the token before the answer (else the last prompt token), each layer's top-K\n"
                   "tokens and the rank of the gold answer's first token. Stores analysis 'lens.R': series\n"
                   "gold_rank@last-prompt, gold_prob@last-prompt, gold_rank@answer, gold_prob@answer (x = 0 embeddings,\n"
                   "l+1 = blocks.l.hook_resid_post) and matrices top_ids, top_probs, gold_rank, gold_prob."};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    pl_store *s;
    if (pl_store_open(&s, path, PL_STORE_WRITE)) return cli_fail();
    int status = 1;
    if (pl_lens_run(s, model, model_id, run, (int)k, target, stdout, json)) goto done;
    status = 0;
done:
    if (status) cli_fail();
    pl_store_close(s);
    return status;
}
