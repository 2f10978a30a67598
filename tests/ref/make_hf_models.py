#!/usr/bin/python3
"""Small random-weight models in every supported format, with every hook of a forward pass
computed independently (plain PyTorch, float64, attention written out by hand).

Usage: make_hf_models.py OUT_DIR
Writes OUT_DIR/<model>/ (a Hugging Face folder) or OUT_DIR/<model>.gguf, the reference hooks in
OUT_DIR/<model>.ref/<hook>.npy (float32), and OUT_DIR/models.json listing
{name, path, tokens, ref, tokenize}. hf_gpt2_f32 also carries a tiny byte-level BPE
tokenizer.json; "tokenize" lists texts with the ids a plain Python BPE gives (no BOS).
Needs only numpy and torch (no transformers / safetensors / gguf packages): both file formats
are written by hand (safetensors below, GGUF with tests/ref/gguf_writer.py).

Hugging Face semantics followed by the reference:
  llama/mistral/qwen2/qwen3: RMSNorm, NeoX rotate_half RoPE (pairs i, i + dh/2), GQA repeat_kv
  (query head h uses kv head h // (H / Hkv)), SwiGLU; qwen2 adds q/k/v biases; qwen3 applies a
  per-head RMSNorm (weight of size head_dim) to q and k before RoPE and has head_dim != d/H.
  gpt2: LayerNorm with bias, learned positions, gelu_new, Conv1D weights stored [in, out],
  fused c_attn [d, 3d] with columns q | k | v, lm_head tied to wte.
Hook conventions: attn.hook_q/k are the raw projections (+ bias) before the qwen3 q/k norm
and before RoPE; attn.hook_rot_q/k are after norm and RoPE.

GGUF (v3, alignment 32; the container by gguf_writer.py) written with llama.cpp's names (src/llama-arch.cpp,
gguf-py/gguf/constants.py):
  metadata: general.architecture, general.alignment (u32), general.name,
    ARCH.context_length, ARCH.embedding_length, ARCH.block_count, ARCH.feed_forward_length,
    ARCH.attention.head_count, ARCH.attention.head_count_kv (all u32),
    ARCH.attention.layer_norm_rms_epsilon (f32; llama/qwen2/qwen3),
    ARCH.attention.layer_norm_epsilon (f32; gpt2), ARCH.rope.freq_base (f32; not gpt2),
    ARCH.rope.dimension_count (u32; rope archs), ARCH.attention.key_length and
    ARCH.attention.value_length (u32; qwen3, head_dim != d/H), ARCH.vocab_size (u32).
    No tokenizer.* keys (random vocabularies).
  tensors (2-D weights are [out, in] row-major, i.e. ne = [in, out]):
    all:    token_embd.weight, output_norm.weight, output.weight (absent = tied),
            blk.N.attn_norm.weight, blk.N.attn_output.weight, blk.N.ffn_norm.weight,
            blk.N.ffn_up.weight, blk.N.ffn_down.weight
    llama/qwen2/qwen3: blk.N.attn_q.weight, attn_k.weight, attn_v.weight, ffn_gate.weight
    qwen2:  blk.N.attn_q.bias, attn_k.bias, attn_v.bias
    qwen3:  blk.N.attn_q_norm.weight, blk.N.attn_k_norm.weight (size head_dim)
    gpt2:   position_embd.weight, output_norm.bias, blk.N.attn_norm.bias, blk.N.attn_qkv.weight
            [3d, d] + attn_qkv.bias [3d] (fused; rows q | k | v) or separate attn_q/k/v
            .weight/.bias, blk.N.attn_output.bias, blk.N.ffn_norm.bias, blk.N.ffn_up.bias,
            blk.N.ffn_down.bias
  llama q/k rows are permuted the way convert_hf_to_gguf.py does (so RoPE rotates ADJACENT pairs):
    w.reshape(n_head, 2, dh // 2, d).swapaxes(1, 2).reshape(n_head * dh, d)
  (n_head = Hkv for attn_k); qwen2/qwen3 are not permuted (NeoX RoPE).
  Tensor types used: F32 (0), F16 (1), Q4_0 (2), Q8_0 (8), BF16 (30); Q8_0/Q4_0 quantized here
  as llama.cpp's reference quantizers do, and the reference uses the dequantized weights.
"""
import json
import math
import os
import re
import struct
import sys

import numpy as np
import torch

import gguf_writer  # tests/ref/gguf_writer.py, beside this file
from gguf_writer import GGUF_F32, GGUF_STRING, GGUF_U32

torch.set_default_dtype(torch.float64)
TOKENS = [1, 17, 5, 99, 42, 7, 63, 120, 3, 77]

# ---------------------------------------------------------------- configs


def make_config(kind, **kw):
    c = dict(kind=kind, d=64, n_layers=2, H=4, Hkv=4, dh=16, f=96, V=128, ctx=64, eps=1e-5, theta=10000.0,
             tied=False)
    c.update(kw)
    return c


def random_weights(c, seed):
    """Canonical weights: linear layers [out, in] like torch.nn.Linear, float64 numpy."""
    rng = np.random.default_rng(seed)
    d, f, V, H, Hkv, dh = c["d"], c["f"], c["V"], c["H"], c["Hkv"], c["dh"]

    def lin(o, i):
        return rng.standard_normal((o, i)) / math.sqrt(i)

    def norm_w(n):
        return 1.0 + 0.1 * rng.standard_normal(n)

    def bias(n):
        return 0.1 * rng.standard_normal(n)

    gpt2 = c["kind"] == "gpt2"
    W = {"embed": 0.3 * rng.standard_normal((V, d)), "layers": []}
    if gpt2:
        W["pos"] = 0.1 * rng.standard_normal((c["ctx"], d))
    for _ in range(c["n_layers"]):
        L = {"ln1": norm_w(d), "wq": lin(H * dh, d), "wk": lin(Hkv * dh, d), "wv": lin(Hkv * dh, d),
             "wo": lin(d, H * dh), "ln2": norm_w(d), "wu": lin(f, d), "wd": lin(d, f)}
        if gpt2:
            L.update(ln1_b=bias(d), bq=bias(d), bk=bias(d), bv=bias(d), bo=bias(d), ln2_b=bias(d), bu=bias(f),
                     bd=bias(d))
        else:
            L["wg"] = lin(f, d)
        if c["kind"] == "qwen2":
            L.update(bq=bias(H * dh), bk=bias(Hkv * dh), bv=bias(Hkv * dh))
        if c["kind"] == "qwen3":
            L.update(q_norm=norm_w(dh), k_norm=norm_w(dh))
        W["layers"].append(L)
    W["ln_f"] = norm_w(d)
    if gpt2:
        W["ln_f_b"] = bias(d)
    W["out"] = W["embed"] if c["tied"] else 0.3 * rng.standard_normal((V, d))
    return W


def map_weights(W, fn):
    """Apply fn(name, array) -> array to every weight (keeps tied outputs tied)."""
    out = {"layers": []}
    for k, v in W.items():
        if k != "layers":
            out[k] = fn(k, v)
    if W["out"] is W["embed"]:
        out["out"] = out["embed"]
    for L in W["layers"]:
        out["layers"].append({k: fn(k, v) for k, v in L.items()})
    return out


# ---------------------------------------------------------------- dtype rounding


def to_bf16_bits(a):
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16  # round to nearest even
    return u.astype(np.uint16)


def bf16_bits_to_f64(b):
    return (b.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def round_to(dtype, a):
    if dtype == "F32":
        return a.astype(np.float32).astype(np.float64)
    if dtype == "F16":
        return a.astype(np.float16).astype(np.float64)
    if dtype == "BF16":
        return bf16_bits_to_f64(to_bf16_bits(a))
    raise ValueError(dtype)


def raw_bytes(dtype, a):
    if dtype == "F32":
        return np.ascontiguousarray(a, dtype="<f4").tobytes()
    if dtype == "F16":
        return np.ascontiguousarray(a, dtype="<f2").tobytes()
    if dtype == "BF16":
        return to_bf16_bits(a).astype("<u2").tobytes()
    raise ValueError(dtype)


# ---------------------------------------------------------------- reference forward (float64)


def rmsnorm(x, w, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def layernorm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def rope(x, theta, style):
    """x: [T, heads, dh]. neox: HF rotate_half (pairs i, i + dh/2); adjacent: pairs (2i, 2i+1)."""
    T, _, dh = x.shape
    inv_freq = 1.0 / (theta ** (torch.arange(0, dh, 2, dtype=torch.float64) / dh))
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]  # [T, dh/2]
    cos, sin = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]
    if style == "neox":
        x1, x2 = x[..., : dh // 2], x[..., dh // 2:]
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = x1 * cos - x2 * sin
    out[..., 1::2] = x2 * cos + x1 * sin
    return out


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def forward(c, W, tokens, rope_style):
    t = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float64))
    gpt2 = c["kind"] == "gpt2"
    H, Hkv, dh, eps = c["H"], c["Hkv"], c["dh"], c["eps"]
    T = len(tokens)
    hooks = {}
    x = t(W["embed"])[torch.tensor(tokens)]
    hooks["hook_embed"] = x
    if gpt2:
        pe = t(W["pos"])[:T]
        hooks["hook_pos_embed"] = pe
        x = x + pe
    norm = (lambda x, w, b: layernorm(x, t(w), t(b), eps)) if gpt2 else (lambda x, w, b: rmsnorm(x, t(w), eps))
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
    for l, L in enumerate(W["layers"]):
        p = f"blocks.{l}."
        hooks[p + "hook_resid_pre"] = x
        h = norm(x, L["ln1"], L.get("ln1_b"))
        hooks[p + "ln1.hook_out"] = h

        def proj(w, b, n_heads):
            y = h @ t(L[w]).T
            if b in L:
                y = y + t(L[b])
            return y.reshape(T, n_heads, dh)

        q, k, v = proj("wq", "bq", H), proj("wk", "bk", Hkv), proj("wv", "bv", Hkv)
        hooks[p + "attn.hook_q"], hooks[p + "attn.hook_k"], hooks[p + "attn.hook_v"] = q, k, v
        if "q_norm" in L:
            q, k = rmsnorm(q, t(L["q_norm"]), eps), rmsnorm(k, t(L["k_norm"]), eps)
        if not gpt2:
            q, k = rope(q, c["theta"], rope_style), rope(k, c["theta"], rope_style)
            hooks[p + "attn.hook_rot_q"], hooks[p + "attn.hook_rot_k"] = q, k
        rep = H // Hkv
        k_rep, v_rep = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)  # HF repeat_kv
        scores = torch.einsum("qhd,khd->hqk", q, k_rep) / math.sqrt(dh)
        scores = scores.masked_fill(mask[None], float("-inf"))
        hooks[p + "attn.hook_attn_scores"] = scores
        pattern = torch.softmax(scores, -1)
        hooks[p + "attn.hook_pattern"] = pattern
        z = torch.einsum("hqk,khd->qhd", pattern, v_rep)
        hooks[p + "attn.hook_z"] = z
        attn_out = z.reshape(T, H * dh) @ t(L["wo"]).T
        if "bo" in L:
            attn_out = attn_out + t(L["bo"])
        hooks[p + "hook_attn_out"] = attn_out
        x = x + attn_out
        hooks[p + "hook_resid_mid"] = x
        h2 = norm(x, L["ln2"], L.get("ln2_b"))
        hooks[p + "ln2.hook_out"] = h2
        if gpt2:
            pre = h2 @ t(L["wu"]).T + t(L["bu"])
            post = gelu_new(pre)
        else:
            pre = h2 @ t(L["wg"]).T
            up = h2 @ t(L["wu"]).T
            hooks[p + "mlp.hook_pre_linear"] = up
            post = torch.nn.functional.silu(pre) * up
        hooks[p + "mlp.hook_pre"] = pre
        hooks[p + "mlp.hook_post"] = post
        mlp_out = post @ t(L["wd"]).T
        if "bd" in L:
            mlp_out = mlp_out + t(L["bd"])
        hooks[p + "hook_mlp_out"] = mlp_out
        x = x + mlp_out
        hooks[p + "hook_resid_post"] = x
    xf = norm(x, W["ln_f"], W.get("ln_f_b"))
    hooks["ln_final.hook_out"] = xf
    hooks["logits"] = xf @ t(W["out"]).T
    return hooks


def save_hooks(hooks, ref_dir):
    os.makedirs(ref_dir, exist_ok=True)
    for name, v in hooks.items():
        np.save(os.path.join(ref_dir, name + ".npy"), v.numpy().astype(np.float32))


# ---------------------------------------------------------------- safetensors writer


def write_safetensors(path, tensors, metadata=None, misalign=False):
    """tensors: list of (name, dtype, array). misalign pads the header to 8k + 2 bytes so F32
    data is not 4-byte aligned (the loader must copy instead of using the mapping in place)."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, a in tensors:
        b = raw_bytes(dtype, a)
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8 + (2 if misalign else 0))
    with open(path, "wb") as fp:
        fp.write(struct.pack("<Q", len(h)))
        fp.write(h)
        for b in blobs:
            fp.write(b)


def hf_tensors(c, W, dtype, prefix="transformer."):
    """Name -> stored array in Hugging Face layout."""
    out = []
    add = lambda name, a: out.append((name, dtype, np.asarray(a)))
    if c["kind"] == "gpt2":
        P = prefix
        add(P + "wte.weight", W["embed"])
        add(P + "wpe.weight", W["pos"])
        for l, L in enumerate(W["layers"]):
            p = f"{P}h.{l}."
            add(p + "ln_1.weight", L["ln1"])
            add(p + "ln_1.bias", L["ln1_b"])
            add(p + "attn.c_attn.weight", np.concatenate([L["wq"], L["wk"], L["wv"]], 0).T)  # Conv1D [in, out]
            add(p + "attn.c_attn.bias", np.concatenate([L["bq"], L["bk"], L["bv"]]))
            add(p + "attn.c_proj.weight", L["wo"].T)
            add(p + "attn.c_proj.bias", L["bo"])
            add(p + "ln_2.weight", L["ln2"])
            add(p + "ln_2.bias", L["ln2_b"])
            add(p + "mlp.c_fc.weight", L["wu"].T)
            add(p + "mlp.c_fc.bias", L["bu"])
            add(p + "mlp.c_proj.weight", L["wd"].T)
            add(p + "mlp.c_proj.bias", L["bd"])
        add(P + "ln_f.weight", W["ln_f"])
        add(P + "ln_f.bias", W["ln_f_b"])
        return out
    add("model.embed_tokens.weight", W["embed"])
    for l, L in enumerate(W["layers"]):
        p = f"model.layers.{l}."
        add(p + "input_layernorm.weight", L["ln1"])
        for w, n in (("wq", "q"), ("wk", "k"), ("wv", "v")):
            add(p + f"self_attn.{n}_proj.weight", L[w])
        if "bq" in L:
            for b, n in (("bq", "q"), ("bk", "k"), ("bv", "v")):
                add(p + f"self_attn.{n}_proj.bias", L[b])
        if "q_norm" in L:
            add(p + "self_attn.q_norm.weight", L["q_norm"])
            add(p + "self_attn.k_norm.weight", L["k_norm"])
        add(p + "self_attn.o_proj.weight", L["wo"])
        add(p + "post_attention_layernorm.weight", L["ln2"])
        add(p + "mlp.gate_proj.weight", L["wg"])
        add(p + "mlp.up_proj.weight", L["wu"])
        add(p + "mlp.down_proj.weight", L["wd"])
    add("model.norm.weight", W["ln_f"])
    if not c["tied"]:
        add("lm_head.weight", W["out"])
    return out


def hf_config(c):
    if c["kind"] == "gpt2":
        return {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": c["d"], "n_layer": c["n_layers"],
                "n_head": c["H"], "n_positions": c["ctx"], "n_ctx": c["ctx"], "n_inner": None, "vocab_size": c["V"],
                "layer_norm_epsilon": c["eps"], "activation_function": "gelu_new", "tie_word_embeddings": True}
    cfg = {"model_type": c["kind"], "hidden_size": c["d"], "num_hidden_layers": c["n_layers"],
           "num_attention_heads": c["H"], "num_key_value_heads": c["Hkv"], "intermediate_size": c["f"],
           "vocab_size": c["V"], "max_position_embeddings": c["ctx"], "rms_norm_eps": c["eps"],
           "rope_theta": c["theta"], "hidden_act": "silu", "tie_word_embeddings": c["tied"], "rope_scaling": None,
           "torch_dtype": "float32"}
    if c["kind"] == "qwen3" or c["dh"] != c["d"] // c["H"]:
        cfg["head_dim"] = c["dh"]
    if c["kind"] == "mistral":
        cfg["sliding_window"] = 32
    return cfg


def write_hf(folder, c, W, dtype, prefix="transformer.", shards=1):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as fp:
        json.dump(hf_config(c), fp, indent=1)
    tensors = hf_tensors(c, W, dtype, prefix)
    if shards == 1:
        write_safetensors(os.path.join(folder, "model.safetensors"), tensors, {"format": "pt"})
        return
    per = (len(tensors) + shards - 1) // shards
    weight_map = {}
    for s in range(shards):
        fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = tensors[s * per:(s + 1) * per]
        write_safetensors(os.path.join(folder, fname), part, {"format": "pt"}, misalign=(s == 0))
        weight_map.update({name: fname for name, _, _ in part})
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as fp:
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, fp, indent=1)


# ---------------------------------------------------------------- tokenizer.json (byte-level BPE)


def bytes_to_unicode():
    """GPT-2's printable stand-ins for the 256 byte values."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


GPT2_MERGES = ["\u0120 t", "h e", "\u0120t he", "\u0120 c", "a t", "\u0120c at", "i n"]
GPT2_SPECIAL = "<|endoftext|>"
TOKENIZE_TEXTS = ["the cat sat in the hat", "then  the\ncat!", "cat" + GPT2_SPECIAL + " the"]


def write_gpt2_tokenizer(folder):
    """A tiny GPT-2 style tokenizer.json: ids 0..255 are the bytes, then the merges, then
    <|endoftext|>. Returns [{text, ids}] encoded by a plain Python BPE (no BOS)."""
    enc = bytes_to_unicode()
    vocab = {enc[b]: b for b in range(256)}
    for m in GPT2_MERGES:
        vocab[m.replace(" ", "")] = len(vocab)
    special_id = len(vocab)
    tok = {"version": "1.0",
           "added_tokens": [{"id": special_id, "content": GPT2_SPECIAL, "single_word": False, "lstrip": False,
                             "rstrip": False, "normalized": False, "special": True}],
           "normalizer": None,
           "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
           "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
           "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
           "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                     "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                     "merges": GPT2_MERGES}}
    with open(os.path.join(folder, "tokenizer.json"), "w", encoding="utf-8") as fp:
        json.dump(tok, fp, ensure_ascii=False)
    rank = {tuple(m.split(" ")): i for i, m in enumerate(GPT2_MERGES)}
    # The GPT-2 split regex restricted to ASCII text (what these texts contain).
    split = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+")

    def bpe(word):
        syms = [enc[b] for b in word.encode()]
        while len(syms) > 1:
            pairs = [(rank.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(syms, syms[1:]))]
            r, i = min(pairs)
            if r == 1 << 30:
                break
            syms[i:i + 2] = [syms[i] + syms[i + 1]]
        return [vocab[x] for x in syms]

    out = []
    for text in TOKENIZE_TEXTS:
        ids = []
        for k, part in enumerate(text.split(GPT2_SPECIAL)):
            if k:
                ids.append(special_id)
            for word in split.findall(part):
                ids += bpe(word)
        out.append({"text": text, "ids": ids})
    return out, special_id + 1


# ---------------------------------------------------------------- GGUF tensors (the file format: gguf_writer.py)


def quantize(dtype, a):
    """Returns (bytes, dequantized float64 array) for a 2-D [rows, cols] array, cols % 32 == 0."""
    rows, cols = a.shape
    blocks = a.astype(np.float32).reshape(-1, 32)
    if dtype == "Q8_0":
        amax = np.abs(blocks).max(1)
        d = (amax / 127.0).astype(np.float32)
        inv = np.where(d != 0, 1.0 / np.where(d != 0, d, 1), 0).astype(np.float32)
        q = np.round(blocks * inv[:, None]).astype(np.int8)
        d16 = d.astype(np.float16)
        raw = b"".join(d16[i:i + 1].astype("<f2").tobytes() + q[i].tobytes() for i in range(len(q)))
        deq = d16.astype(np.float64)[:, None] * q.astype(np.float64)
    else:  # Q4_0: scale = (value of largest magnitude) / -8, q = min(15, trunc(x / scale + 8.5))
        idx = np.abs(blocks).argmax(1)
        mx = blocks[np.arange(len(blocks)), idx]
        d = (mx / -8.0).astype(np.float32)
        inv = np.where(d != 0, 1.0 / np.where(d != 0, d, 1), 0).astype(np.float32)
        q = np.minimum(15, (blocks * inv[:, None] + 8.5).astype(np.int32)).astype(np.uint8)
        d16 = d.astype(np.float16)
        packed = (q[:, :16] | (q[:, 16:] << 4)).astype(np.uint8)
        raw = b"".join(d16[i:i + 1].astype("<f2").tobytes() + packed[i].tobytes() for i in range(len(q)))
        deq = d16.astype(np.float64)[:, None] * (q.astype(np.float64) - 8.0)
    return raw, deq.reshape(rows, cols)


def write_gguf(path, kv, tensors, alignment=32):
    """kv: list of (key, type, value); tensors: list of (name, dtype, array). Returns the
    dequantized / rounded arrays by name (what a correct reader must see)."""
    seen, raw_tensors = {}, []
    for name, dtype, a in tensors:
        a = np.asarray(a, dtype=np.float64)
        if dtype in ("Q8_0", "Q4_0"):
            raw, val = quantize(dtype, a)
        else:
            raw, val = raw_bytes(dtype, a), round_to(dtype, a)
        seen[name] = val
        raw_tensors.append((name, dtype, list(reversed(a.shape)), raw))
    gguf_writer.write_gguf(path, kv, raw_tensors, alignment)
    return seen


def permute_qk(w, n_head):
    """convert_hf_to_gguf.py's LlamaModel.permute: HF (NeoX) rows -> GGUF (adjacent pairs) rows."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_model(path, c, W, types, fused_qkv=True, write_output=None):
    """types: dict role -> dtype with roles embd, norm, attn, ffn, out. Returns the weights a
    correct reader sees (in the file's layout: llama q/k permuted)."""
    arch = c["kind"] if c["kind"] != "mistral" else "llama"
    gpt2 = arch == "gpt2"
    kv = [("general.architecture", GGUF_STRING, arch), ("general.name", GGUF_STRING, "probelab-test-" + arch),
          ("general.alignment", GGUF_U32, 32),
          (arch + ".context_length", GGUF_U32, c["ctx"]), (arch + ".embedding_length", GGUF_U32, c["d"]),
          (arch + ".block_count", GGUF_U32, c["n_layers"]), (arch + ".feed_forward_length", GGUF_U32, c["f"]),
          (arch + ".attention.head_count", GGUF_U32, c["H"]), (arch + ".attention.head_count_kv", GGUF_U32, c["Hkv"]),
          (arch + ".vocab_size", GGUF_U32, c["V"])]
    if gpt2:
        kv.append((arch + ".attention.layer_norm_epsilon", GGUF_F32, c["eps"]))
    else:
        kv += [(arch + ".attention.layer_norm_rms_epsilon", GGUF_F32, c["eps"]),
               (arch + ".rope.freq_base", GGUF_F32, c["theta"]),
               (arch + ".rope.dimension_count", GGUF_U32, c["dh"])]
    if c["dh"] != c["d"] // c["H"]:
        kv += [(arch + ".attention.key_length", GGUF_U32, c["dh"]), (arch + ".attention.value_length", GGUF_U32, c["dh"])]
    T = []
    add = lambda name, role, a: T.append((name, types[role], a))
    add("token_embd.weight", "embd", W["embed"])
    if gpt2:
        add("position_embd.weight", "embd", W["pos"])
    add("output_norm.weight", "norm", W["ln_f"])
    if gpt2:
        add("output_norm.bias", "norm", W["ln_f_b"])
    if write_output if write_output is not None else not c["tied"]:
        add("output.weight", "out", W["out"])
    for l, L in enumerate(W["layers"]):
        p = f"blk.{l}."
        add(p + "attn_norm.weight", "norm", L["ln1"])
        if gpt2:
            add(p + "attn_norm.bias", "norm", L["ln1_b"])
        wq, wk = L["wq"], L["wk"]
        if arch == "llama":
            wq, wk = permute_qk(wq, c["H"]), permute_qk(wk, c["Hkv"])
        if gpt2 and fused_qkv:
            add(p + "attn_qkv.weight", "attn", np.concatenate([wq, wk, L["wv"]], 0))
            add(p + "attn_qkv.bias", "norm", np.concatenate([L["bq"], L["bk"], L["bv"]]))
        else:
            add(p + "attn_q.weight", "attn", wq)
            add(p + "attn_k.weight", "attn", wk)
            add(p + "attn_v.weight", "attn", L["wv"])
            if "bq" in L:
                add(p + "attn_q.bias", "norm", L["bq"])
                add(p + "attn_k.bias", "norm", L["bk"])
                add(p + "attn_v.bias", "norm", L["bv"])
        if "q_norm" in L:
            add(p + "attn_q_norm.weight", "norm", L["q_norm"])
            add(p + "attn_k_norm.weight", "norm", L["k_norm"])
        add(p + "attn_output.weight", "attn", L["wo"])
        if gpt2:
            add(p + "attn_output.bias", "norm", L["bo"])
        add(p + "ffn_norm.weight", "norm", L["ln2"])
        if gpt2:
            add(p + "ffn_norm.bias", "norm", L["ln2_b"])
        else:
            add(p + "ffn_gate.weight", "ffn", L["wg"])
        add(p + "ffn_up.weight", "ffn", L["wu"])
        add(p + "ffn_down.weight", "ffn", L["wd"])
        if gpt2:
            add(p + "ffn_up.bias", "norm", L["bu"])
            add(p + "ffn_down.bias", "norm", L["bd"])
    seen = write_gguf(path, kv, T)

    # Rebuild the canonical weight dict from what the file holds.
    def get(name):
        return seen[name]

    R = {"embed": get("token_embd.weight"), "ln_f": get("output_norm.weight"), "layers": []}
    if gpt2:
        R["pos"] = get("position_embd.weight")
        R["ln_f_b"] = get("output_norm.bias")
    R["out"] = seen.get("output.weight", R["embed"])
    d, qd, kvd = c["d"], c["H"] * c["dh"], c["Hkv"] * c["dh"]
    for l, L in enumerate(W["layers"]):
        p = f"blk.{l}."
        Q = {"ln1": get(p + "attn_norm.weight"), "wo": get(p + "attn_output.weight"), "ln2": get(p + "ffn_norm.weight"),
             "wu": get(p + "ffn_up.weight"), "wd": get(p + "ffn_down.weight")}
        if p + "attn_qkv.weight" in seen:
            qkv, b = get(p + "attn_qkv.weight"), get(p + "attn_qkv.bias")
            Q.update(wq=qkv[:qd], wk=qkv[qd:qd + kvd], wv=qkv[qd + kvd:], bq=b[:qd], bk=b[qd:qd + kvd], bv=b[qd + kvd:])
        else:
            Q.update(wq=get(p + "attn_q.weight"), wk=get(p + "attn_k.weight"), wv=get(p + "attn_v.weight"))
            if p + "attn_q.bias" in seen:
                Q.update(bq=get(p + "attn_q.bias"), bk=get(p + "attn_k.bias"), bv=get(p + "attn_v.bias"))
        if p + "attn_q_norm.weight" in seen:
            Q.update(q_norm=get(p + "attn_q_norm.weight"), k_norm=get(p + "attn_k_norm.weight"))
        if gpt2:
            Q.update(ln1_b=get(p + "attn_norm.bias"), bo=get(p + "attn_output.bias"), ln2_b=get(p + "ffn_norm.bias"),
                     bu=get(p + "ffn_up.bias"), bd=get(p + "ffn_down.bias"))
        else:
            Q["wg"] = get(p + "ffn_gate.weight")
        R["layers"].append(Q)
    return R


# ---------------------------------------------------------------- main


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    configs = {
        "llama": make_config("llama"),
        "mistral": make_config("mistral", H=8, Hkv=2, dh=8, f=128),
        "qwen2": make_config("qwen2", H=4, Hkv=2, tied=True, theta=1000000.0, eps=1e-6),
        "qwen3": make_config("qwen3", H=4, Hkv=2, dh=32, f=128, eps=1e-6),
        "gpt2": make_config("gpt2", f=256, ctx=32, tied=True, V=264),  # HF gpt2: lm_head is wte
    }
    weights = {k: random_weights(c, seed) for seed, (k, c) in enumerate(configs.items())}
    models = []
    tokens = TOKENS

    def emit(name, path, c, W_seen, rope_style, tokenize=None):
        hooks = forward(c, W_seen, tokens, rope_style)
        ref = os.path.join(out_dir, name + ".ref")
        save_hooks(hooks, ref)
        models.append({"name": name, "path": path, "tokens": tokens, "ref": ref, "tokenize": tokenize or []})
        return hooks

    # Hugging Face folders: (name, arch, dtype, gpt2 prefix, shards)
    hf_variants = [("hf_llama_f32", "llama", "F32", None, 1), ("hf_mistral_gqa_f32", "mistral", "F32", None, 1),
                   ("hf_qwen2_f32", "qwen2", "F32", None, 1), ("hf_qwen3_f32", "qwen3", "F32", None, 1),
                   ("hf_gpt2_f32", "gpt2", "F32", "transformer.", 1), ("hf_gpt2_noprefix_f32", "gpt2", "F32", "", 1),
                   ("hf_llama_f16", "llama", "F16", None, 1), ("hf_qwen3_bf16", "qwen3", "BF16", None, 1),
                   ("hf_gpt2_bf16", "gpt2", "BF16", "transformer.", 1), ("hf_qwen2_f16", "qwen2", "F16", None, 1),
                   ("hf_mistral_sharded", "mistral", "F32", None, 3)]
    hf_logits = {}
    for name, arch, dtype, prefix, shards in hf_variants:
        c, W = configs[arch], weights[arch]
        folder = os.path.join(out_dir, name)
        write_hf(folder, c, W, dtype, prefix or "transformer.", shards)
        tokenize = None
        if name == "hf_gpt2_f32":  # one folder carries a tokenizer.json, which the loader must pick up
            tokenize, n_tok = write_gpt2_tokenizer(folder)
            assert n_tok <= c["V"]
        seen = map_weights(W, lambda k, a: round_to(dtype, a))
        hooks = emit(name, folder, c, seen, "neox", tokenize)
        if dtype == "F32":
            hf_logits[arch] = hooks["logits"]

    # GGUF files: (name, arch, role -> type, fused qkv, write output.weight)
    f32 = dict(embd="F32", norm="F32", attn="F32", ffn="F32", out="F32")
    gguf_variants = [("gguf_llama_f32", "llama", f32, True, None),
                     ("gguf_llama_mixed", "llama", dict(embd="F16", norm="F32", attn="Q8_0", ffn="Q4_0", out="BF16"),
                      True, None),
                     ("gguf_mistral_gqa_q8", "mistral", dict(f32, attn="Q8_0", ffn="Q8_0"), True, None),
                     ("gguf_qwen2_f16", "qwen2", dict(f32, embd="F16", attn="F16", ffn="F16"), True, None),
                     ("gguf_qwen3_bf16", "qwen3", dict(f32, embd="BF16", attn="BF16", ffn="Q4_0", out="Q8_0"), True,
                      None),
                     ("gguf_gpt2_q8", "gpt2", dict(f32, attn="Q8_0", ffn="Q8_0"), True, False),
                     ("gguf_gpt2_split_f32", "gpt2", f32, False, True)]
    for name, arch, types, fused, write_output in gguf_variants:
        c, W = configs[arch], weights[arch]
        path = os.path.join(out_dir, name + ".gguf")
        seen = gguf_model(path, c, W, types, fused, write_output)
        style = "adjacent" if c["kind"] in ("llama", "mistral") else "neox"
        hooks = emit(name, path, c, seen, style)
        if types is f32:
            # Self-check of the GGUF layout: permuted rows + adjacent RoPE == HF rows + NeoX RoPE.
            err = (hooks["logits"] - hf_logits[arch]).abs().max().item()
            assert err < 1e-9, f"{name}: GGUF-layout forward differs from the HF one by {err}"

    with open(os.path.join(out_dir, "models.json"), "w") as fp:
        json.dump(models, fp, indent=1)
    print(f"wrote {len(models)} models to {out_dir}")


if __name__ == "__main__":
    main()
