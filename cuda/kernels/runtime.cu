// runtime.cu: the ABI's non-kernel half: errors, versions, devices, memory, streams,
// events and graphs. Each function is a checked call of one CUDA runtime function.
#include <string.h>

#include "common.cuh"

namespace vireo {

static thread_local char last_error[2048];

int set_error(int code, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  return code;
}

int cuda_status(cudaError_t e, const char* op, const char* detail) {
  if (e == cudaSuccess) return VIREO_OK;
  // The error is consumed here: clear the per-thread last error, so that the next
  // launch_status does not report it as that kernel's launch failure (e.g. "launch: out
  // of memory" after a recovered cudaMalloc failure). A sticky error (a kernel fault)
  // is not cleared by this: every later call returns it again.
  cudaGetLastError();
  int code = VIREO_ERR_CUDA;
  if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver) code = VIREO_ERR_NO_DEVICE;
  return set_error(code, "%s%s%s: %s (%s)", op, detail && *detail ? ": " : "", detail ? detail : "",
                   cudaGetErrorString(e), cudaGetErrorName(e));
}

int launch_status(const char* op, const char* fmt, ...) {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) return VIREO_OK;
  char shapes[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(shapes, sizeof shapes, fmt, ap);
  va_end(ap);
  return set_error(VIREO_ERR_CUDA, "%s launch (%s): %s (%s)", op, shapes, cudaGetErrorString(e),
                   cudaGetErrorName(e));
}

} // namespace vireo

using namespace vireo;

#define CALL(op, expr, ...)                                      \
  do {                                                           \
    char detail_[256];                                           \
    detail_[0] = 0;                                              \
    cudaError_t e_ = (expr);                                     \
    if (e_ != cudaSuccess) {                                     \
      snprintf(detail_, sizeof detail_, __VA_ARGS__);            \
      return cuda_status(e_, op, detail_);                       \
    }                                                            \
  } while (0)

// attribute reads a device attribute, 0 when it cannot (the error cleared).
static int attribute(cudaDeviceAttr a, int device) {
  int v = 0;
  if (cudaDeviceGetAttribute(&v, a, device) != cudaSuccess) {
    cudaGetLastError();
    v = 0;
  }
  return v;
}

extern "C" {

int vireo_last_error(char* buf, int len) {
  int n = (int)strlen(last_error);
  if (buf && len > 0) {
    int m = n < len - 1 ? n : len - 1;
    memcpy(buf, last_error, m);
    buf[m] = 0;
  }
  return n;
}

int vireo_abi_version(void) { return VIREO_ABI_VERSION; }

int vireo_versions(int* runtime_version, int* driver_version) {
  VIREO_CHECK_ARG(runtime_version && driver_version, "vireo_versions: NULL output");
  *runtime_version = CUDART_VERSION;
  *driver_version = 0;
  if (cudaDriverGetVersion(driver_version) != cudaSuccess) {
    *driver_version = 0; // no driver: not an error here
    cudaGetLastError();  // nor for the next launch check
  }
  return VIREO_OK;
}

int vireo_build_archs(char* buf, int len) {
#ifndef VIREO_ARCHS
#define VIREO_ARCHS "unknown"
#endif
  VIREO_CHECK_ARG(buf && len > 0, "vireo_build_archs: no buffer");
  snprintf(buf, len, "%s", VIREO_ARCHS);
  return VIREO_OK;
}

int vireo_device_count(int* count) {
  VIREO_CHECK_ARG(count, "vireo_device_count: NULL output");
  *count = 0;
  cudaError_t e = cudaGetDeviceCount(count);
  if (e != cudaSuccess) {
    *count = 0;
    cudaGetLastError(); // clear the sticky-less error so later calls start clean
    return cuda_status(e, "vireo_device_count", "");
  }
  if (*count == 0) return set_error(VIREO_ERR_NO_DEVICE, "vireo_device_count: no CUDA device");
  return VIREO_OK;
}

int vireo_set_device(int device) {
  CALL("vireo_set_device", cudaSetDevice(device), "device %d", device);
  return VIREO_OK;
}

int vireo_device_info_get(int device, vireo_device_info* out) {
  VIREO_CHECK_ARG(out, "vireo_device_info_get: NULL output");
  cudaDeviceProp p;
  CALL("vireo_device_info_get", cudaGetDeviceProperties(&p, device), "device %d", device);
  memset(out, 0, sizeof *out);
  snprintf(out->name, sizeof out->name, "%s", p.name);
  out->major = p.major;
  out->minor = p.minor;
  out->multiprocessors = p.multiProcessorCount;
  out->max_threads_per_sm = p.maxThreadsPerMultiProcessor;
  out->l2_bytes = p.l2CacheSize;
  out->smem_per_block_optin = (int)p.sharedMemPerBlockOptin;
  // Attributes a device may not report read as 0; their failure is cleared so that it
  // cannot surface as the next kernel's launch error.
  out->clock_khz = attribute(cudaDevAttrClockRate, device);
  out->mem_clock_khz = attribute(cudaDevAttrMemoryClockRate, device);
  out->mem_bus_bits = attribute(cudaDevAttrGlobalMemoryBusWidth, device);
  out->total_mem = p.totalGlobalMem;
  return VIREO_OK;
}

int vireo_mem_info(size_t* free_bytes, size_t* total_bytes) {
  VIREO_CHECK_ARG(free_bytes && total_bytes, "vireo_mem_info: NULL output");
  CALL("vireo_mem_info", cudaMemGetInfo(free_bytes, total_bytes), "");
  return VIREO_OK;
}

int vireo_device_sync(void) {
  CALL("vireo_device_sync", cudaDeviceSynchronize(), "");
  return VIREO_OK;
}

int vireo_malloc(void** ptr, size_t bytes) {
  VIREO_CHECK_ARG(ptr, "vireo_malloc: NULL output");
  *ptr = nullptr;
  if (bytes == 0) bytes = 1; // distinct non-NULL pointers for empty tensors
  CALL("vireo_malloc", cudaMalloc(ptr, bytes), "%zu bytes", bytes);
  return VIREO_OK;
}

int vireo_free(void* ptr) {
  CALL("vireo_free", cudaFree(ptr), "%p", ptr);
  return VIREO_OK;
}

int vireo_malloc_host(void** ptr, size_t bytes) {
  VIREO_CHECK_ARG(ptr, "vireo_malloc_host: NULL output");
  *ptr = nullptr;
  if (bytes == 0) bytes = 1;
  CALL("vireo_malloc_host", cudaMallocHost(ptr, bytes), "%zu bytes", bytes);
  return VIREO_OK;
}

int vireo_free_host(void* ptr) {
  CALL("vireo_free_host", cudaFreeHost(ptr), "%p", ptr);
  return VIREO_OK;
}

static int copy(const char* op, void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                vireo_stream_t s) {
  if (bytes == 0) return VIREO_OK;
  VIREO_CHECK_ARG(dst && src, "%s: NULL pointer (dst %p, src %p, %zu bytes)", op, dst, src, bytes);
  if (s == nullptr) {
    CALL(op, cudaMemcpy(dst, src, bytes, kind), "%zu bytes", bytes);
  } else {
    CALL(op, cudaMemcpyAsync(dst, src, bytes, kind, as_stream(s)), "%zu bytes", bytes);
  }
  return VIREO_OK;
}

int vireo_memcpy_h2d(void* dst, const void* src, size_t bytes, vireo_stream_t s) {
  return copy("vireo_memcpy_h2d", dst, src, bytes, cudaMemcpyHostToDevice, s);
}
int vireo_memcpy_d2h(void* dst, const void* src, size_t bytes, vireo_stream_t s) {
  return copy("vireo_memcpy_d2h", dst, src, bytes, cudaMemcpyDeviceToHost, s);
}
int vireo_memcpy_d2d(void* dst, const void* src, size_t bytes, vireo_stream_t s) {
  return copy("vireo_memcpy_d2d", dst, src, bytes, cudaMemcpyDeviceToDevice, s);
}

int vireo_memset(void* dst, int value, size_t bytes, vireo_stream_t s) {
  if (bytes == 0) return VIREO_OK;
  VIREO_CHECK_ARG(dst, "vireo_memset: NULL pointer");
  if (s == nullptr) {
    CALL("vireo_memset", cudaMemset(dst, value, bytes), "%zu bytes", bytes);
  } else {
    CALL("vireo_memset", cudaMemsetAsync(dst, value, bytes, as_stream(s)), "%zu bytes", bytes);
  }
  return VIREO_OK;
}

int vireo_stream_priority_range(int* least, int* greatest) {
  VIREO_CHECK_ARG(least && greatest, "vireo_stream_priority_range: NULL output");
  CALL("vireo_stream_priority_range", cudaDeviceGetStreamPriorityRange(least, greatest), "");
  return VIREO_OK;
}

int vireo_stream_create(vireo_stream_t* stream, int priority) {
  VIREO_CHECK_ARG(stream, "vireo_stream_create: NULL output");
  cudaStream_t s;
  CALL("vireo_stream_create", cudaStreamCreateWithPriority(&s, cudaStreamNonBlocking, priority),
       "priority %d", priority);
  *stream = (vireo_stream_t)s;
  return VIREO_OK;
}

int vireo_stream_destroy(vireo_stream_t stream) {
  CALL("vireo_stream_destroy", cudaStreamDestroy(as_stream(stream)), "");
  return VIREO_OK;
}

int vireo_stream_sync(vireo_stream_t stream) {
  CALL("vireo_stream_sync", cudaStreamSynchronize(as_stream(stream)), "");
  return VIREO_OK;
}

int vireo_event_create(vireo_event_t* event, int timing) {
  VIREO_CHECK_ARG(event, "vireo_event_create: NULL output");
  cudaEvent_t e;
  CALL("vireo_event_create", cudaEventCreateWithFlags(&e, timing ? cudaEventDefault : cudaEventDisableTiming),
       "timing %d", timing);
  *event = (vireo_event_t)e;
  return VIREO_OK;
}

int vireo_event_destroy(vireo_event_t event) {
  CALL("vireo_event_destroy", cudaEventDestroy((cudaEvent_t)event), "");
  return VIREO_OK;
}

int vireo_event_record(vireo_event_t event, vireo_stream_t stream) {
  CALL("vireo_event_record", cudaEventRecord((cudaEvent_t)event, as_stream(stream)), "");
  return VIREO_OK;
}

int vireo_stream_wait_event(vireo_stream_t stream, vireo_event_t event) {
  CALL("vireo_stream_wait_event", cudaStreamWaitEvent(as_stream(stream), (cudaEvent_t)event, 0), "");
  return VIREO_OK;
}

int vireo_event_query(vireo_event_t event) {
  cudaError_t e = cudaEventQuery((cudaEvent_t)event);
  if (e == cudaErrorNotReady) {
    cudaGetLastError(); // not an error: do not leave it for the next launch check
    return VIREO_NOT_READY;
  }
  return cuda_status(e, "vireo_event_query", "");
}

int vireo_event_sync(vireo_event_t event) {
  CALL("vireo_event_sync", cudaEventSynchronize((cudaEvent_t)event), "");
  return VIREO_OK;
}

int vireo_event_elapsed_ms(float* ms, vireo_event_t start, vireo_event_t end) {
  VIREO_CHECK_ARG(ms, "vireo_event_elapsed_ms: NULL output");
  CALL("vireo_event_elapsed_ms", cudaEventElapsedTime(ms, (cudaEvent_t)start, (cudaEvent_t)end), "");
  return VIREO_OK;
}

int vireo_graph_begin_capture(vireo_stream_t stream) {
  CALL("vireo_graph_begin_capture", cudaStreamBeginCapture(as_stream(stream), cudaStreamCaptureModeRelaxed), "");
  return VIREO_OK;
}

int vireo_graph_end_capture(vireo_stream_t stream, vireo_graph_t* graph) {
  VIREO_CHECK_ARG(graph, "vireo_graph_end_capture: NULL output");
  cudaGraph_t g;
  CALL("vireo_graph_end_capture", cudaStreamEndCapture(as_stream(stream), &g), "");
  *graph = (vireo_graph_t)g;
  return VIREO_OK;
}

int vireo_graph_instantiate(vireo_graph_exec_t* exec, vireo_graph_t graph) {
  VIREO_CHECK_ARG(exec, "vireo_graph_instantiate: NULL output");
  cudaGraphExec_t x;
#if CUDART_VERSION >= 12000
  CALL("vireo_graph_instantiate", cudaGraphInstantiate(&x, (cudaGraph_t)graph, 0), "");
#else
  CALL("vireo_graph_instantiate", cudaGraphInstantiate(&x, (cudaGraph_t)graph, nullptr, nullptr, 0), "");
#endif
  *exec = (vireo_graph_exec_t)x;
  return VIREO_OK;
}

int vireo_graph_launch(vireo_graph_exec_t exec, vireo_stream_t stream) {
  CALL("vireo_graph_launch", cudaGraphLaunch((cudaGraphExec_t)exec, as_stream(stream)), "");
  return VIREO_OK;
}

int vireo_graph_destroy(vireo_graph_t graph) {
  CALL("vireo_graph_destroy", cudaGraphDestroy((cudaGraph_t)graph), "");
  return VIREO_OK;
}

int vireo_graph_exec_destroy(vireo_graph_exec_t exec) {
  CALL("vireo_graph_exec_destroy", cudaGraphExecDestroy((cudaGraphExec_t)exec), "");
  return VIREO_OK;
}

} // extern "C"
