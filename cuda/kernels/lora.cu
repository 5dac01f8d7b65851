// lora.cu: LoRA adapters applied per row (vireo_lora), Punica's BGMV: each row gathers
// the adapter of the slot it names from a stacked pool (S-LoRA's unified pool) and adds
// scale·B·(A·x) to its output, so rows of different adapters and of the base model share
// one launch.
//
// Napkin math on an H200 (4.3 TB/s copy bandwidth, ~60 TFLOP/s fp32 SIMT), a decode step
// of 16 rows over Llama-3-8B's q_proj (4096 → 4096) with rank-16 adapters in f16: the
// shrink reads A (16×4096×2 B = 128 KiB per adapter) and the expand B (16×4096×2 B =
// 128 KiB per adapter): with 4 distinct adapters ~1 MiB, ~0.25 µs of bandwidth; the
// arithmetic is 2·16·(4096+4096)·16 rows ≈ 4 MFLOP, nothing. One block per (row, 256
// outputs) recomputes that row's shrink (16 dot products of 4096), so the grid of
// 16 × 16 blocks reads A 16 times over (from L2 after the first: 2 MiB, ~0.1 µs at L2
// bandwidth) — the kernel is bound by launch latency (~3–5 µs) until a prefill batch of
// hundreds of rows, where the repeated shrink (n × out/256 × rank × in MACs: for 256
// rows of 4096→14336, 256×56×16×4096 ≈ 0.94 GMAC ≈ 30 µs) binds instead; a segmented
// SGMV (shrink once per row into a workspace, then a tiled expand) removes that and is
// the next step once a GPU run has measured this one. Seven such launches per layer.
//
// Status: compiled for sm_80/sm_90 and checked by backendtest's lora cases in the GPU
// check; off by default (cuda.Options.LoRA) until GPU run C verifies it.
#include "common.cuh"

using namespace vireo;

namespace {

constexpr int kLoRAThreads = 256; // outputs per block, 8 warps for the shrink

// lora_bgmv_kernel: block (blockIdx.x = output tile, blockIdx.y = row). A row whose
// slot or rank is out of range returns at once (the whole block: the test is uniform).
template <typename T>
__global__ void __launch_bounds__(kLoRAThreads)
lora_bgmv_kernel(T* __restrict__ out, const T* __restrict__ x, const T* __restrict__ a, const T* __restrict__ b,
                 const int32_t* __restrict__ ranks, const int32_t* __restrict__ slots, int in, int out_dim,
                 int n_slots, int max_rank) {
  extern __shared__ float t[]; // [max_rank]: the row's shrink A·x
  const int row = blockIdx.y;
  const int s = slots[row];
  if (s < 0 || s >= n_slots) return;
  const int r = ranks[s];
  if (r < 1 || r > max_rank) return;
  const T* xr = x + (size_t)row * in;
  const T* as = a + (size_t)s * max_rank * in;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = kLoRAThreads / 32;
  for (int k = warp; k < r; k += warps) {
    const T* ak = as + (size_t)k * in;
    float acc = 0.f;
    for (int c = lane; c < in; c += 32) acc += to_f32(ak[c]) * to_f32(xr[c]);
    acc = warp_sum(acc);
    if (lane == 0) t[k] = acc;
  }
  __syncthreads();
  const int j = blockIdx.x * kLoRAThreads + threadIdx.x;
  if (j >= out_dim) return;
  const T* bs = b + (size_t)s * max_rank * out_dim + j;
  float acc = 0.f;
  for (int k = 0; k < r; k++) acc += t[k] * to_f32(bs[(size_t)k * out_dim]);
  T* o = out + (size_t)row * out_dim + j;
  *o = from_f32<T>(to_f32(*o) + acc);
}

} // namespace

extern "C" {

int vireo_lora(vireo_stream_t stream, int dtype, void* out, const void* x, const void* a, const void* b,
               const int32_t* ranks, const int32_t* slots, int n, int in, int out_dim, int n_slots, int max_rank) {
  if (n == 0) return VIREO_OK;
  VIREO_CHECK_ARG(out && x && a && b && ranks && slots && n > 0 && in > 0 && out_dim > 0 && n_slots > 0 && max_rank > 0 &&
                      max_rank <= 4096,
                  "vireo_lora: bad arguments n=%d in=%d out=%d slots=%d max_rank=%d", n, in, out_dim, n_slots, max_rank);
  size_t shared = (size_t)max_rank * sizeof(float);
  constexpr int kMaxGridY = 65535;
  for (int r0 = 0; r0 < n; r0 += kMaxGridY) { // rows beyond grid.y's limit: another launch
    int rows = n - r0 < kMaxGridY ? n - r0 : kMaxGridY;
    dim3 grid(ceil_div(out_dim, kLoRAThreads), rows);
    VIREO_DISPATCH_ACT("vireo_lora", dtype, T, {
      lora_bgmv_kernel<T><<<grid, kLoRAThreads, shared, as_stream(stream)>>>(
          (T*)out + (size_t)r0 * out_dim, (const T*)x + (size_t)r0 * in, (const T*)a, (const T*)b, ranks, slots + r0, in,
          out_dim, n_slots, max_rank);
    });
  }
  return launch_status("vireo_lora", "n=%d in=%d out=%d slots=%d max_rank=%d", n, in, out_dim, n_slots, max_rank);
}

} // extern "C"
