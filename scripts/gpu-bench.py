#!/usr/bin/env python3
"""gpu-bench.py: the PyTorch/cuBLAS side of the kernel benchmarks (gpu-check.sh phase 4).

Same Llama-3-8B shapes as `vireo-check kernels`: int8 GEMM (torch._int_mm), fp16 GEMM
and GEMV, scaled_dot_product_attention for a causal 2048-token prefill and for decode.
Median of CUDA-event timings after a warm-up; weights rotate over copies larger than L2
for the memory-bound cases. Writes one JSON object (--out FILE, else stdout).
"""
import argparse
import json
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    res = {"started": time.time()}
    try:
        import torch
        import torch.nn.functional as F
    except Exception as e:  # no torch: say so
        res["error"] = f"import torch: {e}"
        return finish(res, args.out, 1)
    if not torch.cuda.is_available():
        res["error"] = "torch.cuda.is_available() is False"
        return finish(res, args.out, 1)
    dev = torch.device("cuda")
    res["torch"] = torch.__version__
    res["device"] = torch.cuda.get_device_name(0)
    out = []

    def timed(name, shape, fn, flops=0.0, bytes_=0.0, reps=20, trials=5):
        try:
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
            m = ms[len(ms) // 2]
            r = {"name": name, "shape": shape, "ms": m}
            if flops:
                r["tflops"] = flops / m / 1e9
            if bytes_:
                r["gbs"] = bytes_ / m / 1e6
        except Exception as e:
            r = {"name": name, "shape": shape, "error": str(e)}
        out.append(r)

    g = torch.Generator(device=dev).manual_seed(1)

    def ri8(*s):
        return torch.randint(-127, 128, s, device=dev, dtype=torch.int8, generator=g)

    def rf16(*s):
        return (torch.rand(s, device=dev, generator=g) * 2 - 1).half()

    # GEMMs: x [n][k] @ W[o][k]^T
    for name, n, o, k in [("int8 _int_mm prefill2048 gate", 2048, 14336, 4096),
                          ("int8 _int_mm prefill2048 qkv-o", 2048, 4096, 4096)]:
        x, w = ri8(n, k), ri8(o, k)
        timed(name, f"n={n} n_out={o} k={k}", lambda i: torch._int_mm(x, w.t()), flops=2.0 * n * o * k)
    for name, n, o, k in [("f16 matmul prefill2048 gate", 2048, 14336, 4096),
                          ("f16 gemv decode gate", 1, 14336, 4096)]:
        copies = max(1, min(8, (200 << 20) // (2 * o * k)))
        ws = [rf16(o, k) for _ in range(copies)]
        x = rf16(n, k)
        timed(name, f"n={n} n_out={o} k={k}", lambda i: x @ ws[i % copies].t(), flops=2.0 * n * o * k,
              bytes_=2.0 * o * k)
    # Attention: 32 heads, head dim 128 (K/V expanded to 32 heads: no GQA in the call).
    H, HD = 32, 128
    q, k, v = rf16(1, H, 2048, HD), rf16(1, H, 2048, HD), rf16(1, H, 2048, HD)
    timed("sdpa prefill 2048 causal", "heads=32 hd=128", lambda i: F.scaled_dot_product_attention(q, k, v, is_causal=True),
          flops=4.0 * H * HD * 2048 * 2049 / 2)
    qd, kd, vd = rf16(1, H, 1, HD), rf16(1, H, 8192, HD), rf16(1, H, 8192, HD)
    timed("sdpa decode ctx8192 (kv expanded to 32 heads)", "heads=32 hd=128",
          lambda i: F.scaled_dot_product_attention(qd, kd, vd), bytes_=2.0 * 2 * H * 8192 * HD)
    # Copy bandwidth through torch, for comparison with vireo-check bandwidth.
    a = torch.empty(1 << 30, dtype=torch.uint8, device=dev)
    b = torch.empty_like(a)
    timed("d2d copy 1GiB", "bytes=2^30", lambda i: b.copy_(a), bytes_=2.0 * (1 << 30), reps=10)
    res["benchmarks"] = out
    return finish(res, args.out, 0)


def finish(res, path, rc):
    s = json.dumps(res, indent=2)
    if path:
        with open(path, "w") as f:
            f.write(s + "\n")
    else:
        print(s)
    return rc


if __name__ == "__main__":
    sys.exit(main())
