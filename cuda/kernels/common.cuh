// common.cuh: what every kernel file shares: the per-thread error message, argument
// checks, the activation type traits and small warp/block reductions.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "vireo_kernels.h"

namespace vireo {

// set_error formats this thread's last error message and returns code.
int set_error(int code, const char* fmt, ...);

// cuda_status turns a CUDA error into a status with "op: detail: cuda message".
int cuda_status(cudaError_t e, const char* op, const char* detail);

// launch_status checks the launch that just happened (cudaGetLastError) and names the op
// and its shapes on failure.
int launch_status(const char* op, const char* fmt, ...);

inline const char* dtype_name(int dt) {
  switch (dt) {
  case VIREO_F32: return "f32";
  case VIREO_F16: return "f16";
  case VIREO_BF16: return "bf16";
  case VIREO_I8: return "i8";
  case VIREO_I32: return "i32";
  }
  return "?";
}

inline unsigned ceil_div(long long a, long long b) { return (unsigned)((a + b - 1) / b); }

// Loads and stores of every element type through fp32.
__device__ __forceinline__ float to_f32(float v) { return v; }
__device__ __forceinline__ float to_f32(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_f32(int8_t v) { return (float)v; }

template <typename T> __device__ __forceinline__ T from_f32(float v);
template <> __device__ __forceinline__ float from_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_f32<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// block_sum: every thread gets the block's sum. blockDim.x a multiple of 32, <= 1024.
// Uses 33 floats of shared memory passed in by the caller.
__device__ __forceinline__ float block_sum(float v, float* sh) {
  int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads(); // sh may be reused by a previous reduction
  if (lane == 0) sh[wid] = v;
  __syncthreads();
  float t = lane < nw ? sh[lane] : 0.f;
  t = warp_sum(t);
  return t;
}

__device__ __forceinline__ float block_max(float v, float* sh) {
  int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) sh[wid] = v;
  __syncthreads();
  float t = lane < nw ? sh[lane] : -INFINITY;
  return warp_max(t);
}

// Dispatch an activation dtype to a template: DISPATCH_ACT(dtype, T, { body using T }).
#define VIREO_DISPATCH_ACT(op, dt, T, ...)                                                  \
  do {                                                                                    \
    if ((dt) == VIREO_F16) {                                                              \
      using T = __half;                                                                   \
      __VA_ARGS__;                                                                        \
    } else if ((dt) == VIREO_BF16) {                                                      \
      using T = __nv_bfloat16;                                                            \
      __VA_ARGS__;                                                                        \
    } else {                                                                              \
      return ::vireo::set_error(VIREO_ERR_ARG, "%s: activation dtype %s (want f16 or bf16)", \
                                op, ::vireo::dtype_name(dt));                             \
    }                                                                                     \
  } while (0)

// Same, but f32 allowed too (storage types of weights, norm weights, logits).
#define VIREO_DISPATCH_FLOAT(op, dt, T, ...)                                                \
  do {                                                                                    \
    if ((dt) == VIREO_F32) {                                                              \
      using T = float;                                                                    \
      __VA_ARGS__;                                                                        \
    } else if ((dt) == VIREO_F16) {                                                       \
      using T = __half;                                                                   \
      __VA_ARGS__;                                                                        \
    } else if ((dt) == VIREO_BF16) {                                                      \
      using T = __nv_bfloat16;                                                            \
      __VA_ARGS__;                                                                        \
    } else {                                                                              \
      return ::vireo::set_error(VIREO_ERR_ARG, "%s: dtype %s (want f32, f16 or bf16)", op, \
                                ::vireo::dtype_name(dt));                                 \
    }                                                                                     \
  } while (0)

#define VIREO_CHECK_ARG(cond, ...)                                  \
  do {                                                            \
    if (!(cond)) return ::vireo::set_error(VIREO_ERR_ARG, __VA_ARGS__); \
  } while (0)

inline cudaStream_t as_stream(vireo_stream_t s) { return (cudaStream_t)s; }

} // namespace vireo
