#!/usr/bin/env bash
# The store read without probelab: trace a few examples with stories260K, export .npy and
# .safetensors, then in Python (Debian numpy + stdlib sqlite3 only) load the exports with the
# documented five-line snippet, parse the safetensors file by hand, and recompute every exported
# row straight from the SQLite index and the raw tensor files as docs/store.md describes. All
# three must agree; labels must equal the labels table. Skips (77) without ../shared or numpy.
set -u
PY=/usr/bin/python3
BIN=${PL_BIN:-$(dirname "$0")/../build/cli/probelab}
MODEL="${PL_SHARED_DIR:-$(dirname "$0")/../../shared}/models/stories260K.gguf"
[ -f "$MODEL" ] || { echo "SKIP: $MODEL is absent"; exit 77; }
$PY -c 'import numpy' 2>/dev/null || { echo "SKIP: $PY has no numpy (apt-get install python3-numpy)"; exit 77; }
WORK=$(mktemp -d /tmp/pl_store_py.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
set -e
"$BIN" tasks generate --task arith --n 6 --seed 5 -o "$WORK/arith.jsonl" >/dev/null
"$BIN" trace "$MODEL" --dataset "$WORK/arith.jsonl" --store "$WORK/s.db" --no-progress \
    --record 'blocks.*.hook_resid_post' --dtype f16 --max-new 16 2>/dev/null
"$BIN" trace "$MODEL" --dataset "$WORK/arith.jsonl" --store "$WORK/b.db" --no-progress \
    --record 'blocks.1.hook_resid_post' --dtype bf16 --max-new 8 2>/dev/null
"$BIN" export "$WORK/s.db" --hook blocks.2.hook_resid_post --positions cot -o "$WORK/X.npy" 2>/dev/null
"$BIN" export "$WORK/s.db" --hook blocks.2.hook_resid_post --positions cot -o "$WORK/X.safetensors" 2>/dev/null
"$BIN" export "$WORK/b.db" --hook blocks.1.hook_resid_post --positions mean-prompt --label n_generated -o "$WORK/M.npy" 2>/dev/null
set +e
cd "$WORK" && $PY - <<'PYTHON'
import json, sqlite3, struct, sys
import numpy as np

# the five-line snippet of docs/store.md
X = np.load("X.npy")
y = np.load("X.labels.npy")
runs = np.load("X.runs.npy")
meta = json.load(open("X.json"))

def raw_row(dbfile, run, hook, pos):
    # the "reading tensors without probelab" recipe of docs/store.md
    db = sqlite3.connect("file:%s?mode=ro" % dbfile, uri=True)
    pos0, row, dt, path, off = db.execute(
        "SELECT pos0, row_size, dtype, f.path, offset FROM tensors t JOIN tensor_files f ON f.id = t.file_id"
        " WHERE run_id=? AND hook=? AND pos0<=? ORDER BY pos0 DESC LIMIT 1", (run, hook, pos)).fetchone()
    if dt == "bf16":
        u = np.fromfile(dbfile + "-tensors/" + path, dtype=np.uint16, count=row, offset=off + (pos - pos0) * row * 2)
        return (u.astype(np.uint32) << 16).view(np.float32)
    dtype = {"f32": np.float32, "f16": np.float16}[dt]
    return np.fromfile(dbfile + "-tensors/" + path, dtype=dtype, count=row,
                       offset=off + (pos - pos0) * row * np.dtype(dtype).itemsize).astype(np.float32)

failures = []
def check(cond, what):
    if not cond:
        failures.append(what)

check(X.dtype == np.float32 and X.ndim == 2 and X.shape[1] == 64, "X shape %s" % (X.shape,))
check(meta["n_rows"] == X.shape[0] and meta["hook"] == "blocks.2.hook_resid_post", "json sidecar")
db = sqlite3.connect("file:s.db?mode=ro", uri=True)
cot = db.execute("SELECT run_id, pos FROM tokens t JOIN runs r ON r.id = t.run_id"
                 " WHERE r.status='complete' AND segment='cot' ORDER BY run_id, pos").fetchall()
check([tuple(r) for r in runs.tolist()] == [tuple(c) for c in cot], "runs.npy == cot tokens of the tokens table")
worst = 0.0
for i, (run, pos) in enumerate(runs.tolist()):
    worst = max(worst, float(np.abs(raw_row("s.db", run, "blocks.2.hook_resid_post", pos) - X[i]).max()))
check(worst == 0.0, "export vs raw tensor files: max diff %g" % worst)
labels = dict(db.execute("SELECT run_id, value FROM labels WHERE key='correct'").fetchall())
check(all(int(y[i]) == labels[run] for i, (run, _) in enumerate(runs.tolist())), "labels.npy == labels table")

# safetensors, parsed by hand: u64 header length, JSON header, raw little-endian data
blob = open("X.safetensors", "rb").read()
n = struct.unpack("<Q", blob[:8])[0]
header = json.loads(blob[8:8 + n])
def tensor(name):
    h = header[name]
    dt = {"F32": np.float32, "I32": np.int32}[h["dtype"]]
    a, b = h["data_offsets"]
    return np.frombuffer(blob[8 + n + a:8 + n + b], dtype=dt).reshape(h["shape"])
check(np.array_equal(tensor("X"), X), "safetensors X == npy X")
check(np.array_equal(tensor("labels"), y), "safetensors labels")
check(np.array_equal(tensor("runs"), runs), "safetensors runs")
try:
    from safetensors.numpy import load_file  # optional: only if the package is installed
    check(np.array_equal(load_file("X.safetensors")["X"], X), "safetensors.numpy load_file")
except ImportError:
    pass

# mean-prompt over a bf16 store: recompute the mean from raw rows
M = np.load("M.npy")
Mruns = np.load("M.runs.npy")
Ml = np.load("M.labels.npy")
bdb = sqlite3.connect("file:b.db?mode=ro", uri=True)
worst = 0.0
for i, (run, pos) in enumerate(Mruns.tolist()):
    check(pos == -1, "mean rows have position -1")
    ps = [p for (p,) in bdb.execute("SELECT pos FROM tokens WHERE run_id=? AND segment='prompt'", (run,))]
    mean = np.mean([raw_row("b.db", run, "blocks.1.hook_resid_post", p) for p in ps], axis=0)
    worst = max(worst, float(np.abs(mean - M[i]).max()))
    ng = bdb.execute("SELECT value FROM labels WHERE run_id=? AND key='n_generated'", (run,)).fetchone()[0]
    check(int(Ml[i]) == ng, "n_generated label")
check(worst < 1e-5, "mean-prompt vs numpy mean of raw bf16 rows: %g" % worst)
print("X", X.shape, "M", M.shape, "checks done, failures:", failures)
sys.exit(1 if failures else 0)
PYTHON
