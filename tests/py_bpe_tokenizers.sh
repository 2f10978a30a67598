#!/usr/bin/env bash
# Byte-level BPE against the Hugging Face `tokenizers` library (PyPI): train small byte-level BPE
# tokenizers (GPT-2 style ByteLevel; Qwen2 style NFC + Split regex + ByteLevel; RoBERTa style with
# add_prefix_space and the old "a b" merge form) on a corpus written here, save tokenizer.json, and
# require that probelab's loader gives the same ids on ~200 strings and decodes every one back exactly.
# The GPT-2 and Qwen2 style tokenizers are also written into tiny random gpt2 GGUF models, their
# tokenizer.ggml.* keys as llama.cpp's convert_hf_to_gguf.py writes them (tests/ref/gguf_writer.py:
# model "gpt2", pre "gpt-2" / "qwen2", token types normal/control/user-defined/unused, merges
# "a b" in rank order, bos/eos ids, add_bos_token), and the same ids and decoding are required from
# the GGUF loader, plus `probelab tokenize MODEL.gguf` with and without add_bos_token.
# Needs python3-venv and PyPI (pip install tokenizers into $PL_BUILD_DIR/pyvenv); skips (77) without.
set -u
BUILD_DIR=${PL_BUILD_DIR:-$(dirname "$0")/../build}
SRC=${PL_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
TEST_BPE="$BUILD_DIR/tests/test_bpe"
if [ ! -x "$TEST_BPE" ]; then
    echo "FAIL: $TEST_BPE is not built"
    exit 1
fi
VENV="$BUILD_DIR/pyvenv"
if ! "$VENV/bin/python" -c 'import tokenizers' 2>/dev/null; then
    if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
        echo "SKIP: python3 -m venv $VENV failed (apt-get install python3-venv)"
        exit 77
    fi
    if ! "$VENV/bin/pip" install -q tokenizers >"$VENV/pip.log" 2>&1; then
        echo "SKIP: pip install tokenizers failed (see $VENV/pip.log; is PyPI reachable?)"
        exit 77
    fi
fi
WORK=$(mktemp -d /tmp/pl_bpe.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

"$VENV/bin/python" - "$TEST_BPE" "$WORK" "${PL_BIN:-}" "$SRC" <<'PYTHON'
import json, os, random, subprocess, sys, time, unicodedata
from tokenizers import Tokenizer, Regex, decoders, models, normalizers, pre_tokenizers, trainers, AddedToken

test_bpe, work, probelab, src = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
sys.path.insert(0, os.path.join(src, "tests", "ref"))
import gguf_writer
rng = random.Random(1234)

QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
         r"|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
USER = ["<think>"]  # an added token that is not special: matched literally, kept when decoding

words = ("the quick brown fox jumps over a lazy dog while probes read the residual stream of every layer "
         "attention heads copy tokens forward and the model predicts what comes next in a sentence").split()
contractions = ["don't", "I'm", "you're", "we've", "they'll", "she'd", "it's", "DON'T", "I'LL", "We'Ve", "o'clock"]
code = ["def f(x):\n    return x * 2\n", "for (int i = 0; i < n; i++) {\n\tsum += a[i];\n}",
        "if x==1 and y!=2: print('ok')", "#include <stdio.h>", "const char *s = \"a\\tb\";", "x=[1,2,3]; y={'k': v}"]
unicode = ["café", "naïve", "résumé", "Straße", "Ångström", "日本語のテキスト", "中文分词测试", "한국어", "Привет мир",
           "γειά σου", "مرحبا", "🙂", "👍🏽", "🇫🇷", "👨‍👩‍👧", "∑ x² ≤ ∞", "—–…", "\u00a0nbsp", "\u3000全角"]
numbers = ["42", "3.14159", "1,000,000", "2024-06-01", "0x1F", "12345678901234567890", "-7", "1e-9", "$19.99"]
spaces = [" ", "  ", "\t", "\n", "\n\n", " \n ", "\r\n", "   \t  \n", "\n   "]

def sentence():
    parts = []
    for _ in range(rng.randint(3, 12)):
        pick = rng.random()
        if pick < 0.5: parts.append(rng.choice(words))
        elif pick < 0.6: parts.append(rng.choice(contractions))
        elif pick < 0.7: parts.append(rng.choice(numbers))
        elif pick < 0.8: parts.append(rng.choice(unicode))
        elif pick < 0.9: parts.append(rng.choice(code))
        else: parts.append(rng.choice(words).capitalize() + rng.choice([".", ",", "!", "?", ":", ";"]))
    return "".join(p + rng.choice([" ", " ", " ", "", "  ", "\n", "\t"]) for p in parts)

corpus = [sentence() for _ in range(3000)]

tests = ["", " ", "a", "hello world", "Hello  World", " leading space", "trailing space ", "trailing spaces   ",
         "tab\tseparated\tvalues", "line\nbreaks\n\nand\r\nCRLF", "   \n\n   \t", "\n", "\t\t", "x\n\n\ny",
         "12345", "1 2 3 4 5", "3.14 2.71", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "!!!???...", "(a+b)*c/d-e%f",
         "<|endoftext|>", "a<|endoftext|>b", "<|im_start|>user\nHi there!<|im_end|>\n<|im_start|>assistant\n",
         "<|endoftext|><|endoftext|>", " <|im_end|> ", "<|im_start", "<think>step one</think>", "x<think>y",
         "unseen: Ω ψ ∂ ⊕ ₿ ਪੰਜਾਬੀ ᚠᛇᚻ", "emoji 🙂🙂🙂 and 🧪", "mixed日本English한국", "ÀÉÎÕÜ àéîõü",
         "I'd've", "it's 'quoted' 'S", "don't stop", "  \u00a0 \u2003 x", "\u200bzero width", "a\u0301",
         "[PAD1010] [PAD1001]"]  # the texts of the GGUF's padding tokens are not special
tests += [unicodedata.normalize("NFC", s) for s in contractions + code + unicode + numbers + spaces]
while len(tests) < 200:
    tests.append(sentence())
tests.append(" ".join(corpus[:200]))  # one long string (~20 KB)
tests += [" " * 50000 + "x", "a" * 50000, "ab" * 25000, "\n" * 20000, "é" * 20000]  # long single pre-tokens
tests = [unicodedata.normalize("NFC", s) for s in tests]  # the Qwen2 style normalizer is NFC; keep inputs NFC

def train(name, pre, normalizer=None, merges_as_strings=False):
    tok = Tokenizer(models.BPE())
    if normalizer: tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1000, special_tokens=SPECIAL, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    tok.add_tokens([AddedToken(u, special=False, normalized=False) for u in USER])
    os.makedirs(f"{work}/{name}")
    path = f"{work}/{name}/tokenizer.json"
    tok.save(path)
    if merges_as_strings:  # the older tokenizer.json form, as GPT-2's own file has it
        data = json.load(open(path, encoding="utf-8"))
        data["model"]["merges"] = [m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]]
        json.dump(data, open(path, "w", encoding="utf-8"), ensure_ascii=False)
        tok = Tokenizer.from_file(path)
    return tok, path

# GGUF copies, as convert_hf_to_gguf.py writes them: (pre, model vocab_size (None = the tokenizer's;
# more gives "[PAD<i>]" tokens of type UNUSED, as Qwen2's padded embedding does), bos, eos, add_bos_token).
# GPT-2's tokenizer_config has bos = eos = <|endoftext|> and no add_bos_token; Qwen2's has no bos.
GGUF_GPT2 = ("gpt-2", None, "<|endoftext|>", "<|endoftext|>", None)
GGUF_QWEN2 = ("qwen2", 1024, None, "<|endoftext|>", False)
configs = [
    ("gpt2", train("gpt2", pre_tokenizers.ByteLevel(add_prefix_space=False)), True, GGUF_GPT2),
    ("qwen2", train("qwen2", pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]), normalizer=normalizers.NFC()), True,
     GGUF_QWEN2),
    # add_prefix_space puts a space in front of each segment, so decoding does not give the input back;
    # no GGUF copy (convert_hf_to_gguf.py gives RoBERTa-style models other pre-tokenizer names)
    ("prefix_space", train("prefix_space", pre_tokenizers.ByteLevel(add_prefix_space=True), merges_as_strings=True),
     False, None),
]


def write_gguf_model(path, tokenizer_path, spec, add_bos=None):
    pre, n_vocab, bos, eos, spec_add_bos = spec
    tok_kv, n_vocab = gguf_writer.bpe_tokenizer_kv(tokenizer_path, pre, n_vocab, bos, eos,
                                                   spec_add_bos if add_bos is None else add_bos)
    kv, tensors = gguf_writer.tiny_gpt2(n_vocab)
    gguf_writer.write_gguf(path, kv + tok_kv, tensors)


strings_path = f"{work}/strings.json"
json.dump(tests, open(strings_path, "w", encoding="utf-8"), ensure_ascii=False)
have_cli = bool(probelab and os.access(probelab, os.X_OK))
results = []  # (check name, passed)


def compare(label, tok, path, check_roundtrip):
    """test_bpe's ids and decoding of every test string against the Hugging Face tokenizer's."""
    t0 = time.perf_counter()
    proc = subprocess.run([test_bpe, "encode", path, strings_path], capture_output=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        print(f"{label}: test_bpe failed: {proc.stderr.decode(errors='replace')}")
        results.append((label, False))
        return
    got = json.loads(proc.stdout)
    ref = [e.ids for e in tok.encode_batch(tests, add_special_tokens=False)]
    bad_ids = [i for i in range(len(tests)) if got["ids"][i] != ref[i]]
    bad_text = []
    if check_roundtrip:
        for i, s in enumerate(tests):
            want = s
            for sp in SPECIAL: want = want.replace(sp, "")
            if got["decoded"][i] != want or tok.decode(ref[i], skip_special_tokens=True) != want:
                bad_text.append(i)
    n_tokens = sum(len(r) for r in ref)
    print(f"{label}: {len(tests)} strings, {n_tokens} tokens, vocab {tok.get_vocab_size()}: "
          f"{len(tests) - len(bad_ids)} equal ids, {len(bad_ids)} differ; "
          f"round trip {'checked' if check_roundtrip else 'not applicable'}, {len(bad_text)} differ; "
          f"test_bpe run {seconds:.3f} s")
    for i in bad_ids[:5]:
        print(f"  ids differ on {tests[i][:80]!r}:\n    probelab {got['ids'][i][:40]}\n    hf       {ref[i][:40]}")
    for i in bad_text[:5]:
        print(f"  decode differs on {tests[i][:80]!r}: got {got['decoded'][i][:80]!r}")
    results.append((f"{label} ids", not bad_ids))
    if check_roundtrip:
        results.append((f"{label} round trip", not bad_text))


def compare_cli(label, tok, path, bos=None, flags=()):
    """`probelab tokenize PATH TEXT --json` on ten strings: the Hugging Face ids, after bos if given."""
    bad = 0
    how = f"probelab tokenize {' '.join(flags) or '(BOS if the model adds one)'}"
    for s in tests[3:40:4]:
        out = subprocess.run([probelab, "tokenize", path, s, "--json", *flags], capture_output=True)
        want = ([bos] if bos is not None else []) + tok.encode(s, add_special_tokens=False).ids
        if out.returncode != 0 or json.loads(out.stdout)["ids"] != want:
            print(f"  {how} differs on {s!r}: {out.stdout[:200]!r} {out.stderr[:200]!r}")
            bad += 1
    print(f"{label}: {how}: {10 - bad} of 10 strings equal")
    results.append((f"{label} {how}", bad == 0))


for name, (tok, path), check_roundtrip, gguf_spec in configs:
    compare(name, tok, path, check_roundtrip)
    if have_cli:  # the command line takes a tokenizer.json in place of a model
        compare_cli(name, tok, path, flags=["--no-bos"])
    if gguf_spec is None:
        continue
    gguf_path = f"{work}/{name}.gguf"
    write_gguf_model(gguf_path, path, gguf_spec)
    compare(f"{name} GGUF", tok, gguf_path, check_roundtrip)
    if have_cli:
        compare_cli(f"{name} GGUF", tok, gguf_path)  # add_bos_token absent or false: no BOS
        bos_text = gguf_spec[2] or gguf_spec[3]  # a model without bos_token_id: give it one to add
        with_bos = f"{work}/{name}_add_bos.gguf"
        write_gguf_model(with_bos, path, gguf_spec[:2] + (bos_text,) + gguf_spec[3:], add_bos=True)
        compare_cli(f"{name} GGUF add_bos_token", tok, with_bos, bos=tok.token_to_id(bos_text))
        compare_cli(f"{name} GGUF add_bos_token", tok, with_bos, flags=["--no-bos"])
if have_cli:
    # An unsupported pre-tokenizer (Llama 3's) leaves the weights usable; commands that need text say why.
    path = f"{work}/llama_bpe.gguf"
    write_gguf_model(path, configs[0][1][1], ("llama-bpe",) + GGUF_GPT2[1:])
    info = subprocess.run([probelab, "info", path], capture_output=True)
    out = subprocess.run([probelab, "tokenize", path, "hi"], capture_output=True)
    err = out.stderr.decode(errors="replace").strip()
    print(f"unsupported pre-tokenizer: probelab info rc {info.returncode}; tokenize rc {out.returncode}: {err}")
    results.append(("unsupported pre-tokenizer", info.returncode == 0 and out.returncode != 0 and
                    'unsupported pre-tokenizer "llama-bpe"' in err and "\n" not in err))
else:
    print(f"probelab binary not built ({probelab!r}); command-line checks left out")
failed = [n for n, ok in results if not ok]
print(f"{len(results) - len(failed)} passed, {len(failed)} failed" + (f": {', '.join(failed)}" if failed else ""))
sys.exit(1 if failed else 0)
PYTHON
