"""A GGUF v3 writer in plain Python (struct and json only), so tests can write model files without
the gguf package, numpy or torch. Names and layouts follow llama.cpp's gguf-py (gguf/constants.py:
GGUFValueType, GGMLQuantizationType, Keys.Tokenizer) and convert_hf_to_gguf.py.

write_gguf(path, kv, tensors) writes one file. tiny_gpt2(n_vocab) gives the metadata and F32 tensors
of a one-block random gpt2 model; bpe_tokenizer_kv(tokenizer.json, pre) gives the tokenizer.ggml.*
keys that convert_hf_to_gguf.py's _set_vocab_gpt2 writes for a byte-level BPE tokenizer.
"""
import json
import random
import struct

# GGUFValueType
GGUF_U8, GGUF_I8, GGUF_U16, GGUF_I16, GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL, GGUF_STRING, GGUF_ARRAY, \
    GGUF_U64, GGUF_I64, GGUF_F64 = range(13)
_SCALAR = {GGUF_U8: "<B", GGUF_I8: "<b", GGUF_U16: "<H", GGUF_I16: "<h", GGUF_U32: "<I", GGUF_I32: "<i",
           GGUF_F32: "<f", GGUF_BOOL: "<?", GGUF_U64: "<Q", GGUF_I64: "<q", GGUF_F64: "<d"}
# GGMLQuantizationType, the ones probelab reads
GGML_TYPE = {"F32": 0, "F16": 1, "Q4_0": 2, "Q8_0": 8, "BF16": 30}
# gguf.TokenType
TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_UNUSED, TOKEN_BYTE = 1, 2, 3, 4, 5, 6


def gguf_string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _value(typ, val):
    if typ == GGUF_STRING:
        return gguf_string(val)
    if typ == GGUF_ARRAY:  # val = (element type, list of values)
        elem, items = val
        return struct.pack("<IQ", elem, len(items)) + b"".join(_value(elem, x) for x in items)
    return struct.pack(_SCALAR[typ], val)


def write_gguf(path, kv, tensors, alignment=32):
    """kv: list of (key, value type, value), an array's value being (element type, list).
    tensors: list of (name, ggml type name, ne (innermost dimension first), raw bytes)."""
    infos, datas, offset = [], [], 0
    for name, dtype, ne, raw in tensors:
        info = gguf_string(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
        infos.append(info + struct.pack("<IQ", GGML_TYPE[dtype], offset))
        pad = (alignment - len(raw) % alignment) % alignment
        datas.append(raw + b"\0" * pad)
        offset += len(raw) + pad
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv))
    for key, typ, val in kv:
        out += gguf_string(key) + struct.pack("<I", typ) + _value(typ, val)
    out += b"".join(infos)
    out += b"\0" * ((alignment - len(out) % alignment) % alignment)
    with open(path, "wb") as fp:
        fp.write(out)
        for d in datas:
            fp.write(d)


def tiny_gpt2(n_vocab, d=8, n_ff=16, n_ctx=32, seed=0):
    """(kv, tensors) of a one-block gpt2 model (2 heads, fused qkv) with small random F32 weights."""
    rng = random.Random(seed)

    def f32(name, *shape):  # shape outermost first, as torch writes it; GGUF's ne is the reverse
        n = 1
        for s in shape:
            n *= s
        raw = struct.pack(f"<{n}f", *(rng.gauss(0.0, 0.1) for _ in range(n)))
        return (name, "F32", list(reversed(shape)), raw)

    a = "gpt2"
    kv = [("general.architecture", GGUF_STRING, a), ("general.name", GGUF_STRING, "probelab-test-tokenizer"),
          (a + ".context_length", GGUF_U32, n_ctx), (a + ".embedding_length", GGUF_U32, d),
          (a + ".block_count", GGUF_U32, 1), (a + ".feed_forward_length", GGUF_U32, n_ff),
          (a + ".attention.head_count", GGUF_U32, 2), (a + ".attention.layer_norm_epsilon", GGUF_F32, 1e-5)]
    tensors = [f32("token_embd.weight", n_vocab, d), f32("position_embd.weight", n_ctx, d),
               f32("output_norm.weight", d), f32("output_norm.bias", d),
               f32("blk.0.attn_norm.weight", d), f32("blk.0.attn_norm.bias", d),
               f32("blk.0.attn_qkv.weight", 3 * d, d), f32("blk.0.attn_qkv.bias", 3 * d),
               f32("blk.0.attn_output.weight", d, d), f32("blk.0.attn_output.bias", d),
               f32("blk.0.ffn_norm.weight", d), f32("blk.0.ffn_norm.bias", d),
               f32("blk.0.ffn_up.weight", n_ff, d), f32("blk.0.ffn_up.bias", n_ff),
               f32("blk.0.ffn_down.weight", d, n_ff), f32("blk.0.ffn_down.bias", d)]
    return kv, tensors


def _looks_special(text):
    """convert_hf_to_gguf.py's does_token_look_special."""
    return (text in ("<pad>", "<mask>", "<2mass>", "[@BOS@]") or (text.startswith("<|") and text.endswith("|>"))
            or (text.startswith("<\uff5c") and text.endswith("\uff5c>"))
            or (text.startswith("<unused") and text.endswith(">")))


def bpe_tokenizer_kv(tokenizer_json, pre, n_vocab=None, bos=None, eos=None, add_bos=None):
    """The tokenizer.ggml.* entries convert_hf_to_gguf.py writes for a byte-level BPE tokenizer.json
    (_set_vocab_gpt2: get_vocab_base + gguf.SpecialVocab). pre: tokenizer.ggml.pre ("gpt-2", "qwen2").
    n_vocab: the model's vocab_size; ids the tokenizer lacks become "[PAD<i>]" of type UNUSED.
    bos, eos: token texts (tokenizer_config.json's bos_token / eos_token); add_bos: its add_bos_token.
    Returns (kv, number of tokens written)."""
    with open(tokenizer_json, encoding="utf-8") as fp:
        tj = json.load(fp)
    vocab = dict(tj["model"]["vocab"])
    added = {a["id"]: a for a in tj.get("added_tokens", [])}
    for i, a in added.items():
        vocab[a["content"]] = i
    by_id = {i: t for t, i in vocab.items()}
    if n_vocab is None:
        n_vocab = max(by_id) + 1
    tokens, types = [], []
    for i in range(n_vocab):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(TOKEN_UNUSED)
        elif i in added:
            tokens.append(by_id[i])
            types.append(TOKEN_CONTROL if added[i]["special"] or _looks_special(by_id[i]) else TOKEN_USER_DEFINED)
        else:
            tokens.append(by_id[i])
            types.append(TOKEN_NORMAL)
    merges = tj["model"]["merges"]
    if merges and not isinstance(merges[0], str):  # the [left, right] form: SpecialVocab joins it, spaces as U+0120
        merges = [" ".join("".join(chr(ord(c) + 256) if c == " " else c for c in part) for part in pair)
                  for pair in merges]
    kv = [("tokenizer.ggml.model", GGUF_STRING, "gpt2"), ("tokenizer.ggml.pre", GGUF_STRING, pre),
          ("tokenizer.ggml.tokens", GGUF_ARRAY, (GGUF_STRING, tokens)),
          ("tokenizer.ggml.token_type", GGUF_ARRAY, (GGUF_I32, types)),
          ("tokenizer.ggml.merges", GGUF_ARRAY, (GGUF_STRING, merges))]
    if bos is not None:
        kv.append(("tokenizer.ggml.bos_token_id", GGUF_U32, vocab[bos]))
    if eos is not None:
        kv.append(("tokenizer.ggml.eos_token_id", GGUF_U32, vocab[eos]))
    if add_bos is not None:
        kv.append(("tokenizer.ggml.add_bos_token", GGUF_BOOL, add_bos))
    return kv, n_vocab
