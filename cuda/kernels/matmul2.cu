// matmul2.cu: the host side of kernels v2's matrix products — the configuration table,
// the workspace size and the checked launch (vireo_matmul2). The kernels are in
// matmul2.cuh, instantiated by matmul2_w8a16.cu and matmul2_w8a8.cu, whose headers carry
// the napkin math. This file moves no data: the launch costs ≈ 2–4 µs of host time
// (argument checks, one cudaGetDevice), nothing on the device.
#include "matmul2.cuh"

using namespace vireo;
using namespace vireo::mm2;

namespace {

const CfgRow kTable[kConfigs] = {
#define VIREO_MM2_ROW16(I, WM, WN, MT, NT, BK, ST) {kW8A16, WM, WN, MT, NT, BK, ST},
#define VIREO_MM2_ROW8(I, WM, WN, MT, NT, BK, ST) {kW8A8, WM, WN, MT, NT, BK, ST},
#define VIREO_MM2_ROW4(I, WM, WN, MT, NT, BK, ST) {kW4A16, WM, WN, MT, NT, BK, ST},
    VIREO_MM2_W8A16_CONFIGS(VIREO_MM2_ROW16) VIREO_MM2_W8A8_CONFIGS(VIREO_MM2_ROW8)
        VIREO_MM2_W4A16_CONFIGS(VIREO_MM2_ROW4)
#undef VIREO_MM2_ROW16
#undef VIREO_MM2_ROW8
#undef VIREO_MM2_ROW4
};

// The derived sizes of a configuration, as Shape computes them.
struct Dims {
  int bm, bn, threads, smem;
};

Dims dims(const CfgRow& c) {
  Dims d;
  d.bm = 16 * c.mt * c.wm;
  d.bn = 8 * c.nt * c.wn;
  d.threads = 32 * c.wm * c.wn;
  int astride = c.kind == kW8A8 ? c.bk + 16 : 2 * c.bk + 32;
  int bstride = (c.kind == kW4A16 ? c.bk / 2 : c.bk) + 16;
  d.smem = c.stages * (d.bm * astride + d.bn * bstride);
  return d;
}

// Tiles of a call: row tiles of bm rows, column tiles of bn weight rows (bn/2 output
// columns with SiLU-GLU).
void tiles(const Dims& d, int n, int n_out, int epi, long long* rt, long long* ct) {
  int cols = epi == VIREO_EPI_SILU_GLU ? d.bn / 2 : d.bn;
  *rt = (n + d.bm - 1) / d.bm;
  *ct = (n_out + cols - 1) / cols;
}

size_t ws_bytes(const Dims& d, long long rt, long long ct, int split) {
  if (split <= 1) return 0;
  return (size_t)(rt * ct) * split * d.bm * d.bn * 4 + (size_t)(rt * ct) * 4;
}

bool aligned(const void* p, uintptr_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

} // namespace

extern "C" int vireo_matmul2_config(int i, vireo_mm2_config* out) {
  VIREO_CHECK_ARG(out && i >= 0 && i < kConfigs, "vireo_matmul2_config: no configuration %d (table of %d)", i,
                  kConfigs);
  const CfgRow& c = kTable[i];
  Dims d = dims(c);
  *out = vireo_mm2_config{c.kind, c.wm, c.wn, c.mt, c.nt, c.bk, c.stages, d.bm, d.bn, d.threads, d.smem};
  return VIREO_OK;
}

extern "C" int vireo_matmul2_workspace_bytes(size_t* bytes, int config, int n, int n_out, int epilogue, int split) {
  VIREO_CHECK_ARG(bytes && config >= 0 && config < kConfigs && n >= 0 && n_out > 0 && split >= 1,
                  "vireo_matmul2_workspace_bytes: bad arguments config=%d n=%d n_out=%d split=%d", config, n, n_out,
                  split);
  long long rt, ct;
  Dims d = dims(kTable[config]);
  tiles(d, n, n_out, epilogue, &rt, &ct);
  *bytes = ws_bytes(d, rt, ct, split);
  return VIREO_OK;
}

extern "C" int vireo_matmul2(vireo_stream_t stream, const vireo_mm2_args* a) {
  const char* op = "vireo_matmul2";
  VIREO_CHECK_ARG(a, "%s: no arguments", op);
  VIREO_CHECK_ARG(a->config >= 0 && a->config < kConfigs, "%s: no configuration %d (table of %d)", op, a->config,
                  kConfigs);
  const CfgRow& c = kTable[a->config];
  const char* kind = a->kind == VIREO_MM2_W8A8 ? "w8a8" : a->kind == VIREO_MM2_W4A16 ? "w4a16" : "w8a16";
  VIREO_CHECK_ARG(a->kind == c.kind, "%s: configuration %d is not a %s one", op, a->config, kind);
  VIREO_CHECK_ARG(a->dtype == VIREO_F16 || a->dtype == VIREO_BF16, "%s (%s): activation dtype %s (want f16 or bf16)",
                  op, kind, dtype_name(a->dtype));
  if (a->n == 0) return VIREO_OK;
  const int eb = c.kind == kW8A8 ? 1 : 2;
  const bool w4 = c.kind == kW4A16, affine = w4 && a->w4_mode == VIREO_W4_AFFINE;
  VIREO_CHECK_ARG(!w4 || ((a->w4_mode == VIREO_W4_SYM || affine) && a->w4_scale && (!affine || a->w4_sub)),
                  "%s (w4a16): mode %d with scales %p and sub-scales %p", op, a->w4_mode, (const void*)a->w4_scale,
                  (const void*)a->w4_sub);
  VIREO_CHECK_ARG(a->out && a->x && a->w && (w4 || a->w_scale) && a->n > 0 && a->n_out > 0 && a->k > 0 &&
                      a->ld_x >= a->k && (a->out2 || a->ld_out >= a->n_out),
                  "%s (%s): bad arguments n=%d n_out=%d k=%d ld_x=%d ld_out=%d", op, kind, a->n, a->n_out, a->k,
                  a->ld_x, a->ld_out);
  VIREO_CHECK_ARG(c.kind != kW8A8 || a->x_scale, "%s (w8a8): no activation scales", op);
  VIREO_CHECK_ARG(a->epilogue >= VIREO_EPI_NONE && a->epilogue <= VIREO_EPI_SILU_GLU, "%s: epilogue %d", op,
                  a->epilogue);
  VIREO_CHECK_ARG(a->fault >= VIREO_MM2_FAULT_NONE && a->fault <= VIREO_MM2_FAULT_ROW, "%s: fault %d", op, a->fault);
  if (w4 && a->k % (affine ? 256 : 32) != 0)
    return set_error(VIREO_ERR_UNSUPPORTED, "%s (w4a16): k=%d is not whole groups (%d)", op, a->k, affine ? 256 : 32);
  if (a->k % 16 != 0 || (a->ld_x * eb) % 16 != 0 || !aligned(a->x, 16) || !aligned(a->w, 16))
    return set_error(VIREO_ERR_UNSUPPORTED,
                     "%s (%s): needs k %% 16 == 0, 16-byte aligned x and w and x rows (k=%d ld_x=%d)", op, kind, a->k,
                     a->ld_x);
  VIREO_CHECK_ARG(a->split >= 1 && a->split <= 64, "%s: split %d (1..64)", op, a->split);
  int col2 = a->n_out, col3 = a->n_out;
  if (a->out2) {
    col2 = a->col2;
    col3 = a->out3 ? a->col3 : a->n_out;
    VIREO_CHECK_ARG(a->epilogue != VIREO_EPI_SILU_GLU && 0 < col2 && col2 < col3 && col3 <= a->n_out &&
                        (!a->out3 || col3 < a->n_out) && a->ld_out >= col2 && a->ld_out2 >= col3 - col2 &&
                        (!a->out3 || a->ld_out3 >= a->n_out - col3),
                    "%s (%s): split outputs col2=%d col3=%d ld=%d/%d/%d for n_out=%d epilogue=%d", op, kind, a->col2,
                    a->col3, a->ld_out, a->ld_out2, a->ld_out3, a->n_out, a->epilogue);
  } else {
    VIREO_CHECK_ARG(!a->out3, "%s: out3 without out2", op);
  }
  Dims d = dims(c);
  long long rt, ct;
  tiles(d, a->n, a->n_out, a->epilogue, &rt, &ct);
  size_t need = ws_bytes(d, rt, ct, a->split);
  VIREO_CHECK_ARG(a->split == 1 || (a->workspace && aligned(a->workspace, 16) && a->workspace_bytes >= need),
                  "%s (%s): split %d needs %zu bytes of 16-byte aligned workspace, got %zu", op, kind, a->split, need,
                  a->workspace ? a->workspace_bytes : (size_t)0);
  dim3 grid;
  if (a->rows_fast) {
    VIREO_CHECK_ARG(rt <= 0x7fffffffLL && ct <= 65535, "%s: %lld×%lld tiles", op, rt, ct);
    grid = dim3((unsigned)rt, (unsigned)ct, (unsigned)a->split);
  } else {
    VIREO_CHECK_ARG(ct <= 0x7fffffffLL && rt <= 65535, "%s: %lld×%lld tiles", op, rt, ct);
    grid = dim3((unsigned)ct, (unsigned)rt, (unsigned)a->split);
  }
  Params p;
  p.out = a->out, p.ld_out = a->ld_out, p.x = a->x, p.ld_x = a->ld_x, p.x_scale = a->x_scale;
  p.w = a->w, p.w_scale = a->w_scale, p.w4_scale = a->w4_scale, p.w4_sub = a->w4_sub, p.n = a->n, p.n_out = a->n_out, p.k = a->k, p.epi = a->epilogue;
  p.split = a->split;
  // W4A16 slices are whole 32-k groups (a group is one 16-byte chunk of a weight row).
  const int align = w4 ? 32 : 16;
  p.slice = ((a->k + a->split - 1) / a->split + align - 1) / align * align;
  p.ws = a->workspace;
  p.row_tiles = (int)rt, p.col_tiles = (int)ct, p.rows_fast = a->rows_fast != 0;
  p.out2 = a->out2, p.ld_out2 = a->out2 ? a->ld_out2 : 0, p.col2 = col2;
  p.out3 = a->out3, p.ld_out3 = a->out3 ? a->ld_out3 : 0, p.col3 = col3;
  p.vec_out = (a->ld_out % 2 == 0 && aligned(a->out, 4)) | (a->out2 && p.ld_out2 % 2 == 0 && aligned(a->out2, 4)) << 1 |
              (a->out3 && p.ld_out3 % 2 == 0 && aligned(a->out3, 4)) << 2;
  p.fault = a->fault;
  cudaStream_t s = as_stream(stream);
  int st = w4                  ? launch_w4a16(a->config, a->dtype, affine, p, grid, s)
           : c.kind == kW8A16 ? launch_w8a16(a->config, a->dtype, p, grid, s)
                              : launch_w8a8(a->config, a->dtype, p, grid, s);
  if (st) return st;
  return launch_status(op, "%s config=%d n=%d n_out=%d k=%d epilogue=%d split=%d w4_mode=%d", kind, a->config, a->n,
                       a->n_out, a->k, a->epilogue, a->split, a->w4_mode);
}
