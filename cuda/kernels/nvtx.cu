// nvtx.cu: NVTX ranges for nsys and ncu (runtime/profiling opens them around steps,
// layers and ops). Not a kernel: host code only, no device work. Napkin math: an NVTX
// push or pop without a tool attached is one indirect call into a no-op (the nvtx3
// header's lazy init finds no injection library on its first call), ~10 ns, plus the
// cgo call, ~50-100 ns; a Llama-3-8B decode step opens ~900 ranges (32 layers × 14
// ops, the layers, the step), ~0.1 ms per step of host time against ~7 ms of device
// time on an H200: ranges are on only when wanted (VIREO_NVTX=1, or a tool that sets
// NVTX_INJECTION64_PATH). With nsys attached each range costs what nsys costs (~1 µs).
//
// Range names are registered once (nvtxDomainRegisterStringA in the "vireo" domain)
// with a color; a push passes the registered handle, so a range costs no string copy.
#include <mutex>
#include <string.h>

#include <nvtx3/nvToolsExt.h>

#include "common.cuh"

namespace {

constexpr int kMaxRanges = VIREO_NVTX_MAX_RANGES;

struct Ranges {
  std::mutex mu;  // guards registration; pushes read entries that never change once published
  nvtxDomainHandle_t domain = nullptr;
  int n = 0;
  char names[kMaxRanges][64];
  nvtxEventAttributes_t attrs[kMaxRanges];
};

Ranges& ranges() {
  static Ranges r;
  return r;
}

}  // namespace

extern "C" {

int vireo_nvtx_range_id(const char* name, unsigned color, int* id) {
  if (!name || !id) return vireo::set_error(VIREO_ERR_ARG, "nvtx range id: null argument");
  Ranges& r = ranges();
  std::lock_guard<std::mutex> lock(r.mu);
  for (int i = 0; i < r.n; i++) {
    if (strncmp(r.names[i], name, sizeof r.names[i] - 1) == 0) {
      *id = i;
      return VIREO_OK;
    }
  }
  if (r.n == kMaxRanges) {
    return vireo::set_error(VIREO_ERR_ARG, "nvtx range id: %d ranges registered, the most there can be", kMaxRanges);
  }
  if (!r.domain) r.domain = nvtxDomainCreateA("vireo");
  int i = r.n;
  strncpy(r.names[i], name, sizeof r.names[i] - 1);
  r.names[i][sizeof r.names[i] - 1] = 0;
  nvtxEventAttributes_t a;
  memset(&a, 0, sizeof a);
  a.version = NVTX_VERSION;
  a.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
  a.colorType = NVTX_COLOR_ARGB;
  a.color = 0xff000000u | (color & 0xffffffu);
  a.messageType = NVTX_MESSAGE_TYPE_REGISTERED;
  a.message.registered = nvtxDomainRegisterStringA(r.domain, r.names[i]);
  r.attrs[i] = a;
  r.n = i + 1;  // published under the lock; a push of id i happens after this returns
  *id = i;
  return VIREO_OK;
}

void vireo_nvtx_push(int id) {
  Ranges& r = ranges();
  if (id < 0 || id >= kMaxRanges || !r.domain) return;
  nvtxDomainRangePushEx(r.domain, &r.attrs[id]);
}

void vireo_nvtx_pop(void) {
  Ranges& r = ranges();
  if (r.domain) nvtxDomainRangePop(r.domain);
}

}  // extern "C"
