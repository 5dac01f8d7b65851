// fill.cu: device-side random fills (vireo_fill_uniform) and the one-kernel probe
// (vireo_probe) of the GPU check's device phase.
//
// Napkin math, vireo_fill_uniform on an H200 (4.3 TB/s measured copy bandwidth): each
// thread draws one Philox4x32-10 block (10 rounds of two 32×32→64 multiplies: ~40
// integer ops) per 4 elements and writes them; nothing is read. A 14336×4096 int8 weight
// (58.7 MB written, 14.7 M Philox blocks ≈ 0.6 GOP of integer work on ~130 TOP/s of
// INT32 throughput: ~5 µs) is bound by the write: ~14 µs. The 8B model's 16 GB of
// 16-bit weights: ~4 ms. On one host thread the same draw took ~20 s (issue 18).
// vireo_probe: one block of 32 threads writing 32 ints: launch latency only (~5 µs).
#include "common.cuh"

using namespace vireo;

namespace {

// Philox4x32-10 (Random123), as runtime/sampling.Philox4x32.
__device__ __forceinline__ uint4 philox(uint4 ctr, uint2 key) {
#pragma unroll
  for (int r = 0; r < 10; r++) {
    if (r > 0) {
      key.x += 0x9E3779B9u;
      key.y += 0xBB67AE85u;
    }
    uint32_t lo0 = 0xD2511F53u * ctr.x, hi0 = __umulhi(0xD2511F53u, ctr.x);
    uint32_t lo1 = 0xCD9E8D57u * ctr.z, hi1 = __umulhi(0xCD9E8D57u, ctr.z);
    ctr = make_uint4(hi1 ^ ctr.y ^ key.x, lo1, hi0 ^ ctr.w ^ key.y, lo0);
  }
  return ctr;
}

constexpr uint32_t kFillStream = 0x46494c4cu; // "FILL": never a sampling stream

__device__ __forceinline__ float word_to_value(uint32_t x, float scale) {
  float u = __fmul_rn((float)(x >> 8), 1.0f / 16777216.0f); // [0, 1)
  return (2.f * u - 1.f) * scale;
}

template <typename T>
__global__ void fill_float_kernel(T* __restrict__ dst, size_t n, uint64_t seed, float scale) {
  const uint2 key = make_uint2((uint32_t)seed, (uint32_t)(seed >> 32));
  for (size_t b = blockIdx.x * (size_t)blockDim.x + threadIdx.x; 4 * b < n; b += (size_t)gridDim.x * blockDim.x) {
    uint4 o = philox(make_uint4((uint32_t)b, (uint32_t)(b >> 32), kFillStream, 0u), key);
    uint32_t w[4] = {o.x, o.y, o.z, o.w};
#pragma unroll
    for (int j = 0; j < 4; j++) {
      size_t i = 4 * b + j;
      if (i < n) dst[i] = from_f32<T>(word_to_value(w[j], scale));
    }
  }
}

__global__ void fill_i8_kernel(int8_t* __restrict__ dst, size_t n, uint64_t seed) {
  const uint2 key = make_uint2((uint32_t)seed, (uint32_t)(seed >> 32));
  for (size_t b = blockIdx.x * (size_t)blockDim.x + threadIdx.x; 4 * b < n; b += (size_t)gridDim.x * blockDim.x) {
    uint4 o = philox(make_uint4((uint32_t)b, (uint32_t)(b >> 32), kFillStream, 0u), key);
    uint32_t w[4] = {o.x, o.y, o.z, o.w};
#pragma unroll
    for (int j = 0; j < 4; j++) {
      size_t i = 4 * b + j;
      if (i < n) dst[i] = (int8_t)((int)(w[j] % 255u) - 127); // -127 .. 127
    }
  }
}

__global__ void probe_kernel(int* out) { out[threadIdx.x] = (int)threadIdx.x * 3 + 1; }

} // namespace

extern "C" int vireo_fill_uniform(vireo_stream_t stream, int dtype, void* dst, size_t n, uint64_t seed, float scale) {
  const char* op = "vireo_fill_uniform";
  if (n == 0) return VIREO_OK;
  VIREO_CHECK_ARG(dst, "%s: NULL destination (%zu elements)", op, n);
  size_t blocks4 = (n + 3) / 4;
  unsigned grid = (unsigned)((blocks4 + 255) / 256);
  if (grid > 65536u) grid = 65536u; // grid-stride beyond
  cudaStream_t s = as_stream(stream);
  if (dtype == VIREO_I8) {
    fill_i8_kernel<<<grid, 256, 0, s>>>((int8_t*)dst, n, seed);
    return launch_status(op, "i8 n=%zu", n);
  }
  VIREO_DISPATCH_FLOAT(op, dtype, T, { fill_float_kernel<T><<<grid, 256, 0, s>>>((T*)dst, n, seed, scale); });
  return launch_status(op, "%s n=%zu", dtype_name(dtype), n);
}

extern "C" int vireo_probe(int* values) {
  const char* op = "vireo_probe";
  VIREO_CHECK_ARG(values, "%s: NULL output", op);
  int* d = nullptr;
  cudaError_t e = cudaMalloc(&d, 32 * sizeof(int));
  if (e != cudaSuccess) return cuda_status(e, op, "cudaMalloc of 128 bytes");
  probe_kernel<<<1, 32>>>(d);
  int st = launch_status(op, "1 block of 32 threads (a missing kernel image for this card fails here)");
  if (st == VIREO_OK) {
    e = cudaMemcpy(values, d, 32 * sizeof(int), cudaMemcpyDeviceToHost);
    if (e != cudaSuccess) st = cuda_status(e, op, "copying the probe's 32 ints back");
  }
  cudaError_t fe = cudaFree(d);
  if (st == VIREO_OK && fe != cudaSuccess) st = cuda_status(fe, op, "cudaFree");
  return st;
}
