#!/usr/bin/env python3
"""gpu-bench.py: the PyTorch anchor of the GPU check (gpu-check.sh phase "torch").

Measured in the same run as Vireo, on the same Llama-3-8B shape (dim 4096, FFN 14336,
32 heads / 8 KV heads of 128, vocab 128256, 32 layers) with random bf16 weights:

  copy      device-to-device copy bandwidth, bytes read + written (the roofline)
  decode    batch-1 decode tokens/s: one step (embedding, 32 layers, classifier,
            greedy argmax, position += 1) over a static KV cache, captured once as a
            torch.cuda.CUDAGraph and replayed back to back (torch.compile would not
            fit the budget); with bytes_per_token and decode_anchor_bw_fraction =
            bytes_per_token x tokens/s / copy bandwidth (bf16 reads twice the bytes
            of Vireo's int8, so compare fractions of bandwidth, not only tokens/s)
  prefill   one prompt of 128, 512 and 2,048 tokens through the 32 layers with
            scaled_dot_product_attention (causal, GQA), K/V written to a cache, last
            token's logits: the TTFT anchor
  int_mm    torch._int_mm (int8 x int8 -> int32) at the prefill shapes
  gemv      bf16 matrix-vector products at the decode shapes (weights rotate over
            copies larger than L2)
  sdpa      scaled_dot_product_attention alone: causal 2,048 prefill, decode at 8,192

Medians of CUDA-event timings after warm-ups; random data (never zeros). The JSON
(--out FILE, else stdout) is rewritten after every section, so a run cut off by its
cap keeps what it measured; --budget SECONDS (default 55) skips what would not fit.
Must stay under 60 s on an H200.
"""
import argparse
import json
import math
import sys
import time

T0 = time.time()
# Llama-3-8B
D, F, H, KH, HD, V, L = 4096, 14336, 32, 8, 128, 128256, 32
EPS, THETA = 1e-5, 500000.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="")
    ap.add_argument("--budget", type=float, default=55.0)
    ap.add_argument("--layers", type=int, default=L, help="layers of the model (fewer only for a quick try)")
    args = ap.parse_args()
    res = {"started": T0, "shape": {"dim": D, "ffn": F, "heads": H, "kv_heads": KH, "head_dim": HD, "vocab": V, "layers": args.layers}}
    out = args.out

    def save(rc=None):
        res["seconds"] = time.time() - T0
        s = json.dumps(res, indent=2)
        if out:
            with open(out + ".tmp", "w") as f:
                f.write(s + "\n")
            import os
            os.replace(out + ".tmp", out)
        elif rc is not None:
            print(s)

    try:
        import torch
        import torch.nn.functional as Fn
    except Exception as e:  # no torch: say so
        res["error"] = "import torch: %s" % e
        save(1)
        return 1
    if not torch.cuda.is_available():
        res["error"] = "torch.cuda.is_available() is False (torch %s, CUDA build %s)" % (torch.__version__, torch.version.cuda)
        save(1)
        return 1
    dev = torch.device("cuda")
    res["torch"] = torch.__version__
    res["device"] = torch.cuda.get_device_name(0)
    torch.backends.cuda.matmul.allow_tf32 = False
    g = torch.Generator(device=dev).manual_seed(1)
    errors = []

    def left():
        return args.budget - (time.time() - T0)

    def timed(fn, reps=10, trials=5, warm=2):
        for _ in range(warm):
            fn(0)
        torch.cuda.synchronize()
        ms = []
        for _ in range(trials):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            for i in range(reps):
                fn(i)
            b.record()
            b.synchronize()
            ms.append(a.elapsed_time(b) / reps)
        ms.sort()
        return ms[len(ms) // 2]

    def section(name, fn):
        if left() < 3:
            res.setdefault("skipped", []).append(name)
            errors.append("%s: skipped, budget spent" % name)
            return
        t = time.time()
        try:
            fn()
        except Exception as e:
            res[name + "_error"] = "%s: %s" % (type(e).__name__, e)
            errors.append(name)
        res.setdefault("section_seconds", {})[name] = time.time() - t
        save()

    def rnd(*shape, a=1.0, dtype=torch.bfloat16):
        return torch.empty(shape, device=dev, dtype=dtype).uniform_(-a, a, generator=g)

    # ---- copy bandwidth ----
    def copy():
        n = 1 << 30
        a = torch.empty(n, dtype=torch.uint8, device=dev).random_(0, 256, generator=g)
        b = torch.empty_like(a)
        ms = timed(lambda i: b.copy_(a), reps=10, trials=5)
        res["copy"] = {"bytes": n, "ms": ms, "gbs": 2.0 * n / ms / 1e6}
        del a, b

    section("copy", copy)

    # ---- the model: random bf16 weights (uniform with variance 1/in) ----
    nl = args.layers
    W = {}

    def build():
        s = lambda k: math.sqrt(3.0 / k)
        W["emb"] = rnd(V, D, a=1.0)
        W["out"] = rnd(V, D, a=s(D))
        W["norm"] = torch.ones(D, device=dev, dtype=torch.bfloat16)
        W["layers"] = []
        for _ in range(nl):
            W["layers"].append({
                "qkv": rnd((H + 2 * KH) * HD, D, a=s(D)), "o": rnd(D, H * HD, a=s(H * HD)),
                "gu": rnd(2 * F, D, a=s(D)), "down": rnd(D, F, a=s(F)),
                "n1": torch.ones(D, device=dev, dtype=torch.bfloat16), "n2": torch.ones(D, device=dev, dtype=torch.bfloat16)})
        inv = 1.0 / (THETA ** (torch.arange(0, HD, 2, device=dev, dtype=torch.float64) / HD))
        ang = torch.outer(torch.arange(4096, device=dev, dtype=torch.float64), inv)
        W["cos"], W["sin"] = ang.cos().float(), ang.sin().float()
        params = nl * (D * (H + 2 * KH) * HD + D * H * HD + 2 * F * D + D * F) + V * D
        res["model"] = {"params_read_per_token": params, "bytes_per_token": 2 * params, "build_s": time.time() - t}
        torch.cuda.synchronize()

    t = time.time()
    section("model", build)
    if "layers" not in W:
        res["error"] = "model: %s" % res.get("model_error")
        save(1)
        return 1

    def rms(x, w):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + EPS)).to(x.dtype) * w

    def rope(x, pos):  # x [1, heads, T, HD]; pos [T] int64; rotate-half pairs
        c, s = W["cos"][pos][None, None], W["sin"][pos][None, None]
        x1, x2 = x[..., : HD // 2].float(), x[..., HD // 2:].float()
        return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], -1).to(x.dtype)

    def layers(x, pos, kc, vc, mask):
        # x [T, D]; pos [T]; kc/vc [nl, 1, KH, S, HD]; mask None (causal prompt from 0) or [1,1,T,S] bool
        T = x.shape[0]
        for li, ly in enumerate(W["layers"]):
            h = rms(x, ly["n1"])
            qkv = h @ ly["qkv"].t()
            q = qkv[:, : H * HD].view(T, H, HD).transpose(0, 1)[None]
            k = qkv[:, H * HD:(H + KH) * HD].view(T, KH, HD).transpose(0, 1)[None]
            v = qkv[:, (H + KH) * HD:].view(T, KH, HD).transpose(0, 1)[None]
            q, k = rope(q, pos), rope(k, pos)
            kc[li].index_copy_(2, pos, k)
            vc[li].index_copy_(2, pos, v)
            if mask is None:
                a = Fn.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            else:
                a = Fn.scaled_dot_product_attention(q, kc[li], vc[li], attn_mask=mask, enable_gqa=True)
            x = x + a[0].transpose(0, 1).reshape(T, H * HD) @ ly["o"].t()
            h = rms(x, ly["n2"])
            gu = h @ ly["gu"].t()
            x = x + (Fn.silu(gu[:, :F]) * gu[:, F:]) @ ly["down"].t()
        return x

    # ---- batch-1 decode: one step captured as a CUDA graph, replayed back to back ----
    def decode():
        S = 512
        kc = torch.zeros(nl, 1, KH, S, HD, device=dev, dtype=torch.bfloat16)
        vc = torch.zeros_like(kc)
        kc.uniform_(-1, 1, generator=g)
        vc.uniform_(-1, 1, generator=g)
        tok = torch.full((1,), 7, device=dev, dtype=torch.int64)
        pos = torch.full((1,), 16, device=dev, dtype=torch.int64)
        ar = torch.arange(S, device=dev)

        def step():
            x = W["emb"][tok]
            mask = (ar <= pos)[None, None, None, :]
            x = layers(x, pos, kc, vc, mask)
            logits = rms(x, W["norm"]) @ W["out"].t()
            tok.copy_(logits.argmax(-1))
            pos.add_(1)

        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                step()
        torch.cuda.current_stream().wait_stream(s)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
        steps = 64
        per = []
        for trial in range(3):
            pos.fill_(16)
            graph.replay()  # warm
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            for _ in range(steps):
                graph.replay()
            b.record()
            b.synchronize()
            per.append(a.elapsed_time(b) / steps)
        per.sort()
        ms = per[len(per) // 2]
        bpt = res["model"]["bytes_per_token"]
        res["decode"] = {"tokens_per_s": 1e3 / ms, "ms_per_token": ms, "steps": steps, "context": "16..%d" % (16 + steps),
                         "bytes_per_token": bpt, "weights_gbs": bpt / ms / 1e6, "cuda_graph": True}
        if "copy" in res:
            res["decode_anchor_bw_fraction"] = bpt * (1e3 / ms) / (res["copy"]["gbs"] * 1e9)
        del graph, kc, vc

    section("decode", decode)

    # ---- prefill (TTFT anchor): 128, 512, 2048 tokens ----
    def prefill():
        S = 2048
        kc = torch.zeros(nl, 1, KH, S, HD, device=dev, dtype=torch.bfloat16)
        vc = torch.zeros_like(kc)
        out = {}
        for T in (128, 512, 2048):
            if left() < 4:
                out[str(T)] = "skipped: budget spent"
                continue
            ids = torch.randint(3, V, (T,), device=dev, generator=g)
            pos = torch.arange(T, device=dev)

            def run(i):
                x = layers(W["emb"][ids], pos, kc, vc, None)
                return (rms(x[-1:], W["norm"]) @ W["out"].t()).argmax(-1)

            ms = timed(run, reps=1, trials=3, warm=1)
            out[str(T)] = {"ms": ms, "tokens_per_s": T / ms * 1e3}
            res["prefill"] = out
            save()
        res["prefill"] = out
        del kc, vc

    section("prefill", prefill)

    # ---- int8 GEMMs at the prefill shapes, bf16 GEMV at the decode shapes ----
    def int_mm():
        rows = []
        for n in (128, 512, 2048):
            for name, o, k in (("qkv", (H + 2 * KH) * HD, D), ("gate_up", 2 * F, D), ("down", D, F)):
                x = torch.randint(-127, 128, (n, k), device=dev, dtype=torch.int8, generator=g)
                w = torch.randint(-127, 128, (o, k), device=dev, dtype=torch.int8, generator=g)
                wt = w.t()
                ms = timed(lambda i: torch._int_mm(x, wt), reps=5, trials=3)
                rows.append({"name": "int_mm %s n=%d" % (name, n), "n": n, "n_out": o, "k": k, "ms": ms,
                             "tops": 2.0 * n * o * k / ms / 1e9})
        res["int_mm"] = rows

    section("int_mm", int_mm)

    def gemv():
        rows = []
        for name, o, k in (("qkv", (H + 2 * KH) * HD, D), ("o", D, H * HD), ("gate_up", 2 * F, D), ("down", D, F), ("classifier", V, D)):
            copies = max(1, min(8, (256 << 20) // (2 * o * k)))
            ws = [rnd(o, k) for _ in range(copies)]
            x = rnd(1, k)
            ms = timed(lambda i: x @ ws[i % copies].t(), reps=20, trials=5)
            rows.append({"name": "bf16 gemv %s" % name, "n_out": o, "k": k, "ms": ms, "gbs": 2.0 * o * k / ms / 1e6})
            del ws
        res["gemv"] = rows

    section("gemv", gemv)

    def sdpa():
        q, k, v = rnd(1, H, 2048, HD), rnd(1, KH, 2048, HD), rnd(1, KH, 2048, HD)
        ms = timed(lambda i: Fn.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True), reps=10, trials=5)
        rows = [{"name": "sdpa prefill 2048 causal gqa", "ms": ms, "tflops": 4.0 * H * HD * 2048 * 2049 / 2 / ms / 1e9}]
        qd, kd, vd = rnd(1, H, 1, HD), rnd(1, KH, 8192, HD), rnd(1, KH, 8192, HD)
        ms = timed(lambda i: Fn.scaled_dot_product_attention(qd, kd, vd, enable_gqa=True), reps=20, trials=5)
        rows.append({"name": "sdpa decode ctx8192 gqa", "ms": ms, "gbs": 2.0 * 2 * KH * 8192 * HD / ms / 1e6})
        res["sdpa"] = rows

    section("sdpa", sdpa)
    if errors:
        res["errors"] = errors
    save(0)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
