#!/bin/bash
# Every supported architecture, exact against an independent PyTorch reference: tests/ref/
# make_hf_models.py writes small random-weight models (Hugging Face folders: llama, mistral GQA,
# qwen2, qwen3, gpt2 with and without the "transformer." prefix, F32/F16/BF16, one sharded with an
# unaligned data region; GGUF: llama with permuted q/k, mistral GQA, qwen2, qwen3, gpt2 fused and
# split qkv, in F32/F16/BF16/Q8_0/Q4_0) and every hook of a float64 forward pass. This runs
# `probelab run MODEL --hooks '*' --dump DIR` on each and requires every hook, logits included,
# within 1e-4 absolute, printing the worst error per model. Skips (77) without /usr/bin/python3
# + numpy + torch.
set -u
PY=/usr/bin/python3
BIN=${PL_BIN:-probelab}
SRC=${PL_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
TOL=${PL_HF_TOL:-1e-4}

if ! "$PY" -c 'import numpy, torch' 2>/dev/null; then
    echo "SKIP: $PY lacks numpy or torch"
    exit 77
fi
WORK=$(mktemp -d /tmp/pl_hf_models.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

"$PY" "$SRC/tests/ref/make_hf_models.py" "$WORK/models" || { echo "FAIL: reference generation"; exit 1; }

mkdir -p "$WORK/dump"
failures=0
count=0
while IFS=$'\t' read -r name path tokens ref; do
    count=$((count + 1))
    dump="$WORK/dump/$name"
    if ! "$BIN" run "$path" --token-ids "$tokens" --hooks '*' --dump "$dump" > "$WORK/run.log" 2>&1; then
        echo "FAIL $name: probelab run failed:"
        sed 's/^/     /' "$WORK/run.log"
        failures=$((failures + 1))
        continue
    fi
    "$PY" "$SRC/tests/ref/compare_hooks.py" "$name" "$ref" "$dump" "$TOL" || failures=$((failures + 1))
done < <("$PY" -c '
import json, sys
for m in json.load(open(sys.argv[1])):
    print("\t".join([m["name"], m["path"], ",".join(map(str, m["tokens"])), m["ref"]]))
' "$WORK/models/models.json")

# A folder with a tokenizer.json gets its tokenizer: ids must equal a plain Python BPE's.
"$PY" - "$BIN" "$WORK/models/models.json" <<'PYEOF' || failures=$((failures + 1))
import json, subprocess, sys
bin_path, manifest = sys.argv[1], sys.argv[2]
bad = 0
for m in json.load(open(manifest)):
    for case in m["tokenize"]:
        r = subprocess.run([bin_path, "tokenize", m["path"], case["text"], "--json", "--no-bos"], capture_output=True, text=True)
        got = json.loads(r.stdout)["ids"] if r.returncode == 0 else r.stderr.strip()
        ok = got == case["ids"]
        bad += not ok
        print(f"{'ok' if ok else 'FAIL':4} tokenize {m['name']} {case['text']!r}: {got}" + ("" if ok else f" (expected {case['ids']})"))
sys.exit(1 if bad else 0)
PYEOF

if [ "$count" -eq 0 ]; then
    echo "FAIL: no models generated"
    exit 1
fi
echo "$((count - failures))/$count models match the reference"
[ "$failures" -eq 0 ]
