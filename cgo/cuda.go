//go:build cuda

package cgo

/*
#cgo CFLAGS: -I${SRCDIR}/../cuda/kernels
#cgo LDFLAGS: -L${SRCDIR}/../build -lvireo_kernels -Wl,-rpath,$ORIGIN -Wl,-rpath,${SRCDIR}/../build
#include <stdlib.h>
#include "vireo_kernels.h"
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// Available reports whether this build has CUDA (it may still find no device).
const Available = true

var _ [SamplingParamsSize - C.sizeof_vireo_sampling_params]struct{}
var _ [C.sizeof_vireo_sampling_params - SamplingParamsSize]struct{}

// HeaderABIVersion is the VIREO_ABI_VERSION this package was compiled against; a
// library found at run time (rpath $ORIGIN) reporting another ABIVersion is stale.
const HeaderABIVersion = C.VIREO_ABI_VERSION

// The header's constants agree with this package's.
var _ [MaxStopIDs - C.VIREO_MAX_STOP_IDS]struct{}
var _ [C.VIREO_MAX_STOP_IDS - MaxStopIDs]struct{}
var _ [TokenEnded - C.VIREO_TOKEN_ENDED]struct{}
var _ [C.VIREO_TOKEN_ENDED - TokenEnded]struct{}
var _ [TokenHost - C.VIREO_TOKEN_HOST]struct{}
var _ [C.VIREO_TOKEN_HOST - TokenHost]struct{}
var _ [MM2W8A8 - C.VIREO_MM2_W8A8]struct{}
var _ [C.VIREO_MM2_W8A8 - MM2W8A8]struct{}
var _ [MM2W4A16 - C.VIREO_MM2_W4A16]struct{}
var _ [C.VIREO_MM2_W4A16 - MM2W4A16]struct{}
var _ [W4Affine - C.VIREO_W4_AFFINE]struct{}
var _ [C.VIREO_W4_AFFINE - W4Affine]struct{}
var _ [W4Sym - C.VIREO_W4_SYM]struct{}
var _ [C.VIREO_W4_SYM - W4Sym]struct{}
var _ [MM2FaultRow - C.VIREO_MM2_FAULT_ROW]struct{}
var _ [C.VIREO_MM2_FAULT_ROW - MM2FaultRow]struct{}

// call runs one ABI call with the goroutine locked to its OS thread, so that the
// thread-local error message read on failure is this call's.
func call(name string, f func() C.int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	rc := f()
	if rc == StatusOK {
		return nil
	}
	return &Error{Func: name, Code: int(rc), Msg: lastError()}
}

func lastError() string {
	var buf [2048]C.char
	C.vireo_last_error(&buf[0], C.int(len(buf)))
	return C.GoString(&buf[0])
}

func (s Stream) c() C.vireo_stream_t        { return C.vireo_stream_t(s.p) }
func (e Event) c() C.vireo_event_t          { return C.vireo_event_t(e.p) }
func (g Graph) c() C.vireo_graph_t          { return C.vireo_graph_t(g.p) }
func (x GraphExec) c() C.vireo_graph_exec_t { return C.vireo_graph_exec_t(x.p) }

func sz(n int) C.size_t               { return C.size_t(n) }
func ci(n int) C.int                  { return C.int(n) }
func i32(p unsafe.Pointer) *C.int32_t { return (*C.int32_t)(p) }
func i8(p unsafe.Pointer) *C.int8_t   { return (*C.int8_t)(p) }
func f32(p unsafe.Pointer) *C.float   { return (*C.float)(p) }

// ---- versions and devices ----

// ABIVersion is the library's VIREO_ABI_VERSION.
func ABIVersion() int { return int(C.vireo_abi_version()) }

// Versions returns the CUDA runtime version the library was built with and the driver's
// (0 without a driver).
func Versions() (runtimeVersion, driverVersion int, err error) {
	var r, d C.int
	err = call("vireo_versions", func() C.int { return C.vireo_versions(&r, &d) })
	return int(r), int(d), err
}

// BuildArchs lists the SASS targets compiled into the library, e.g. "80,90,90a".
func BuildArchs() (string, error) {
	var buf [128]C.char
	err := call("vireo_build_archs", func() C.int { return C.vireo_build_archs(&buf[0], C.int(len(buf))) })
	return C.GoString(&buf[0]), err
}

func DeviceCount() (int, error) {
	var n C.int
	err := call("vireo_device_count", func() C.int { return C.vireo_device_count(&n) })
	return int(n), err
}

func SetDevice(dev int) error {
	return call("vireo_set_device", func() C.int { return C.vireo_set_device(ci(dev)) })
}

func GetDeviceInfo(dev int) (DeviceInfo, error) {
	var p C.vireo_device_info
	if err := call("vireo_device_info_get", func() C.int { return C.vireo_device_info_get(ci(dev), &p) }); err != nil {
		return DeviceInfo{}, err
	}
	return DeviceInfo{
		Name: C.GoString(&p.name[0]), Major: int(p.major), Minor: int(p.minor),
		Multiprocessors: int(p.multiprocessors), MaxThreadsPerSM: int(p.max_threads_per_sm),
		L2Bytes: int(p.l2_bytes), SharedMemPerBlockOptin: int(p.smem_per_block_optin),
		ClockKHz: int(p.clock_khz), MemClockKHz: int(p.mem_clock_khz), MemBusBits: int(p.mem_bus_bits),
		TotalMem: uint64(p.total_mem),
	}, nil
}

func MemInfo() (free, total uint64, err error) {
	var f, t C.size_t
	err = call("vireo_mem_info", func() C.int { return C.vireo_mem_info(&f, &t) })
	return uint64(f), uint64(t), err
}

func DeviceSync() error {
	return call("vireo_device_sync", func() C.int { return C.vireo_device_sync() })
}

// ---- memory ----

func Malloc(bytes int) (unsafe.Pointer, error) {
	var p unsafe.Pointer
	err := call("vireo_malloc", func() C.int { return C.vireo_malloc(&p, sz(bytes)) })
	return p, err
}

func Free(p unsafe.Pointer) error { return call("vireo_free", func() C.int { return C.vireo_free(p) }) }

// MallocHost allocates pinned host memory.
func MallocHost(bytes int) (unsafe.Pointer, error) {
	var p unsafe.Pointer
	err := call("vireo_malloc_host", func() C.int { return C.vireo_malloc_host(&p, sz(bytes)) })
	return p, err
}

func FreeHost(p unsafe.Pointer) error {
	return call("vireo_free_host", func() C.int { return C.vireo_free_host(p) })
}

// MemcpyH2D copies bytes from host src. On a non-zero stream the copy is asynchronous;
// src must then be pinned memory (MallocHost) that stays untouched until the copy ran.
func MemcpyH2D(dst, src unsafe.Pointer, bytes int, s Stream) error {
	return call("vireo_memcpy_h2d", func() C.int { return C.vireo_memcpy_h2d(dst, src, sz(bytes), s.c()) })
}

// MemcpyD2H copies bytes to host dst (asynchronous on a non-zero stream: dst pinned).
func MemcpyD2H(dst, src unsafe.Pointer, bytes int, s Stream) error {
	return call("vireo_memcpy_d2h", func() C.int { return C.vireo_memcpy_d2h(dst, src, sz(bytes), s.c()) })
}

func MemcpyD2D(dst, src unsafe.Pointer, bytes int, s Stream) error {
	return call("vireo_memcpy_d2d", func() C.int { return C.vireo_memcpy_d2d(dst, src, sz(bytes), s.c()) })
}

func Memset(dst unsafe.Pointer, value byte, bytes int, s Stream) error {
	return call("vireo_memset", func() C.int { return C.vireo_memset(dst, C.int(value), sz(bytes), s.c()) })
}

// ---- streams, events, graphs ----

// StreamPriorityRange: lower numbers are higher priorities (greatest <= least).
func StreamPriorityRange() (least, greatest int, err error) {
	var l, g C.int
	err = call("vireo_stream_priority_range", func() C.int { return C.vireo_stream_priority_range(&l, &g) })
	return int(l), int(g), err
}

func StreamCreate(priority int) (Stream, error) {
	var s C.vireo_stream_t
	err := call("vireo_stream_create", func() C.int { return C.vireo_stream_create(&s, ci(priority)) })
	return Stream{unsafe.Pointer(s)}, err
}

func (s Stream) Destroy() error {
	return call("vireo_stream_destroy", func() C.int { return C.vireo_stream_destroy(s.c()) })
}

func (s Stream) Sync() error {
	return call("vireo_stream_sync", func() C.int { return C.vireo_stream_sync(s.c()) })
}

// Wait makes later work on s wait for e.
func (s Stream) Wait(e Event) error {
	return call("vireo_stream_wait_event", func() C.int { return C.vireo_stream_wait_event(s.c(), e.c()) })
}

func EventCreate(timing bool) (Event, error) {
	var e C.vireo_event_t
	t := 0
	if timing {
		t = 1
	}
	err := call("vireo_event_create", func() C.int { return C.vireo_event_create(&e, ci(t)) })
	return Event{unsafe.Pointer(e)}, err
}

func (e Event) Destroy() error {
	return call("vireo_event_destroy", func() C.int { return C.vireo_event_destroy(e.c()) })
}

func (e Event) Record(s Stream) error {
	return call("vireo_event_record", func() C.int { return C.vireo_event_record(e.c(), s.c()) })
}

// Query reports whether the work before the event's record point is complete.
func (e Event) Query() (bool, error) {
	var rc C.int
	err := call("vireo_event_query", func() C.int {
		rc = C.vireo_event_query(e.c())
		if rc == StatusNotReady {
			return StatusOK
		}
		return rc
	})
	return err == nil && rc == StatusOK, err
}

func (e Event) Sync() error {
	return call("vireo_event_sync", func() C.int { return C.vireo_event_sync(e.c()) })
}

// ElapsedMs is the time between two recorded timing events.
func ElapsedMs(start, end Event) (float32, error) {
	var ms C.float
	err := call("vireo_event_elapsed_ms", func() C.int { return C.vireo_event_elapsed_ms(&ms, start.c(), end.c()) })
	return float32(ms), err
}

// ---- NVTX ----

// NVTXRangeID registers an NVTX range name with a color (0xRRGGBB) and returns the id
// NVTXPush takes.
func NVTXRangeID(name string, color uint32) (int, error) {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	var id C.int
	err := call("vireo_nvtx_range_id", func() C.int { return C.vireo_nvtx_range_id(cs, C.uint(color), &id) })
	return int(id), err
}

// NVTXPush opens a range of a registered id on the calling OS thread; NVTXPop closes
// the innermost one.
func NVTXPush(id int) { C.vireo_nvtx_push(C.int(id)) }

func NVTXPop() { C.vireo_nvtx_pop() }

func BeginCapture(s Stream) error {
	return call("vireo_graph_begin_capture", func() C.int { return C.vireo_graph_begin_capture(s.c()) })
}

func EndCapture(s Stream) (Graph, error) {
	var g C.vireo_graph_t
	err := call("vireo_graph_end_capture", func() C.int { return C.vireo_graph_end_capture(s.c(), &g) })
	return Graph{unsafe.Pointer(g)}, err
}

func (g Graph) Instantiate() (GraphExec, error) {
	var x C.vireo_graph_exec_t
	err := call("vireo_graph_instantiate", func() C.int { return C.vireo_graph_instantiate(&x, g.c()) })
	return GraphExec{unsafe.Pointer(x)}, err
}

func (g Graph) Destroy() error {
	return call("vireo_graph_destroy", func() C.int { return C.vireo_graph_destroy(g.c()) })
}

func (x GraphExec) Launch(s Stream) error {
	return call("vireo_graph_launch", func() C.int { return C.vireo_graph_launch(x.c(), s.c()) })
}

func (x GraphExec) Destroy() error {
	return call("vireo_graph_exec_destroy", func() C.int { return C.vireo_graph_exec_destroy(x.c()) })
}

// ---- kernels ----

func Convert(s Stream, dstType DType, dst unsafe.Pointer, srcType DType, src unsafe.Pointer, n int) error {
	return call("vireo_convert", func() C.int {
		return C.vireo_convert(s.c(), C.int(dstType), dst, C.int(srcType), src, sz(n))
	})
}

// Embed: out [n][dim] = table[ids[i]] (× scales[ids[i]] for int8 tables).
func Embed(s Stream, dt DType, out unsafe.Pointer, tableType DType, table, scales, ids unsafe.Pointer, n, dim, vocab int) error {
	return call("vireo_embed", func() C.int {
		return C.vireo_embed(s.c(), C.int(dt), out, C.int(tableType), table, f32(scales), i32(ids), ci(n), ci(dim), ci(vocab))
	})
}

func RMSNorm(s Stream, a *RMSNormArgs) error {
	return call("vireo_rmsnorm", func() C.int {
		return C.vireo_rmsnorm(s.c(), C.int(a.DType), a.Out, a.X, a.Residual, C.int(a.WDType), a.W, ci(a.N), ci(a.Dim), C.float(a.Eps))
	})
}

func RMSNormQuant(s Stream, a *RMSNormArgs) error {
	return call("vireo_rmsnorm_quant", func() C.int {
		return C.vireo_rmsnorm_quant(s.c(), C.int(a.DType), i8(a.Q), f32(a.QScale), a.X, a.Residual, C.int(a.WDType), a.W,
			ci(a.N), ci(a.Dim), C.float(a.Eps))
	})
}

// QuantizeRows: q int8 [n][dim], scale f32 [n] from x [n][ldX].
func QuantizeRows(s Stream, dt DType, q, scale, x unsafe.Pointer, ldX, n, dim int) error {
	return call("vireo_quantize_rows", func() C.int {
		return C.vireo_quantize_rows(s.c(), C.int(dt), i8(q), f32(scale), x, ci(ldX), ci(n), ci(dim))
	})
}

// RoPE rotates x [n][ldX] in place: pos int32 [n], invFreq f32 [headDim/2].
func RoPE(s Stream, dt DType, x unsafe.Pointer, ldX, n, heads, headDim int, pos, invFreq unsafe.Pointer, style int) error {
	return call("vireo_rope", func() C.int {
		return C.vireo_rope(s.c(), C.int(dt), x, ci(ldX), ci(n), ci(heads), ci(headDim), i32(pos), f32(invFreq), ci(style))
	})
}

func SiLUMul(s Stream, dt DType, out, gate, up unsafe.Pointer, n, hidden int) error {
	return call("vireo_silu_mul", func() C.int { return C.vireo_silu_mul(s.c(), C.int(dt), out, gate, up, ci(n), ci(hidden)) })
}

// LoRA adds each row's adapter product to out [n][outDim] (vireo_lora): x [n][in], a
// [slots·maxRank][in], b [slots·maxRank][outDim], ranks int32 [slots], rowSlots int32 [n].
func LoRA(s Stream, dt DType, out, x, a, b, ranks, rowSlots unsafe.Pointer, n, in, outDim, slots, maxRank int) error {
	return call("vireo_lora", func() C.int {
		return C.vireo_lora(s.c(), C.int(dt), out, x, a, b, i32(ranks), i32(rowSlots), ci(n), ci(in), ci(outDim), ci(slots), ci(maxRank))
	})
}

// GatherRows: out [n][cols] = x[rows[i]] for elements of elemBytes.
func GatherRows(s Stream, out, x, rows unsafe.Pointer, n, cols, xRows, elemBytes int) error {
	return call("vireo_gather_rows", func() C.int {
		return C.vireo_gather_rows(s.c(), out, x, i32(rows), ci(n), ci(cols), ci(xRows), ci(elemBytes))
	})
}

// WriteKV stores k, v [n][ld] at slots (int32 [n]) of one layer's caches.
func WriteKV(s Stream, dt DType, kCache, vCache, k, v unsafe.Pointer, ldK, ldV int, slots unsafe.Pointer, n, kvHeads, headDim, blockSize, numBlocks int) error {
	return call("vireo_write_kv", func() C.int {
		return C.vireo_write_kv(s.c(), C.int(dt), kCache, vCache, k, v, ci(ldK), ci(ldV), i32(slots), ci(n), ci(kvHeads),
			ci(headDim), ci(blockSize), ci(numBlocks))
	})
}

// AttentionWorkspaceBytes is the scratch Attention may use to split contexts.
func AttentionWorkspaceBytes(nRows, heads, headDim, maxCtx int) (int, error) {
	var b C.size_t
	err := call("vireo_attention_workspace_bytes", func() C.int {
		return C.vireo_attention_workspace_bytes(&b, ci(nRows), ci(heads), ci(headDim), ci(maxCtx))
	})
	return int(b), err
}

func Attention(s Stream, a *AttentionArgs) error {
	return call("vireo_attention", func() C.int {
		return C.vireo_attention(s.c(), C.int(a.DType), a.Out, a.Q, ci(a.LdOut), ci(a.LdQ), a.KCache, a.VCache, i32(a.Seqs),
			i32(a.RowSeq), i32(a.BlockTables), ci(a.NRows), ci(a.NSeqs), ci(a.Heads), ci(a.KVHeads), ci(a.HeadDim),
			ci(a.BlockSize), ci(a.MaxCtx), C.float(a.Scale), a.Workspace, sz(a.WorkspaceBytes))
	})
}

// The C configuration structs agree with this package's.
var _ [unsafe.Sizeof(Attention2Config{}) - C.sizeof_vireo_attention2_config]struct{}
var _ [C.sizeof_vireo_attention2_config - unsafe.Sizeof(Attention2Config{})]struct{}
var _ [unsafe.Sizeof(Sample2Config{}) - C.sizeof_vireo_sample2_config]struct{}
var _ [C.sizeof_vireo_sample2_config - unsafe.Sizeof(Sample2Config{})]struct{}

// Attention2WorkspaceBytes is the workspace Attention2 needs for nRows rows of contexts
// up to maxCtx (its counters part zeroed once after allocation); see
// vireo_attention2_workspace_bytes.
func Attention2WorkspaceBytes(nRows, heads, kvHeads, headDim, maxCtx int, cfg *Attention2Config) (int, error) {
	var b C.size_t
	err := call("vireo_attention2_workspace_bytes", func() C.int {
		return C.vireo_attention2_workspace_bytes(&b, ci(nRows), ci(heads), ci(kvHeads), ci(headDim), ci(maxCtx),
			(*C.vireo_attention2_config)(unsafe.Pointer(cfg)))
	})
	return int(b), err
}

// Attention2 is vireo_attention2 (kernels v2) over the operands of Attention.
func Attention2(s Stream, a *AttentionArgs, cfg *Attention2Config) error {
	return call("vireo_attention2", func() C.int {
		return C.vireo_attention2(s.c(), C.int(a.DType), a.Out, a.Q, ci(a.LdOut), ci(a.LdQ), a.KCache, a.VCache, i32(a.Seqs),
			i32(a.RowSeq), i32(a.BlockTables), ci(a.NRows), ci(a.NSeqs), ci(a.Heads), ci(a.KVHeads), ci(a.HeadDim),
			ci(a.BlockSize), ci(a.MaxCtx), C.float(a.Scale), a.Workspace, sz(a.WorkspaceBytes),
			(*C.vireo_attention2_config)(unsafe.Pointer(cfg)))
	})
}

func MatMulW8A16(s Stream, a *MatMulArgs) error {
	return call("vireo_matmul_w8a16", func() C.int {
		return C.vireo_matmul_w8a16(s.c(), C.int(a.DType), a.Out, ci(a.LdOut), a.X, ci(a.LdX), i8(a.W), f32(a.WScale),
			ci(a.N), ci(a.NOut), ci(a.K), C.int(a.Epi), C.int(a.Var))
	})
}

func MatMulW8A8(s Stream, a *MatMulArgs) error {
	return call("vireo_matmul_w8a8", func() C.int {
		return C.vireo_matmul_w8a8(s.c(), C.int(a.DType), a.Out, ci(a.LdOut), i8(a.X), f32(a.XScale), i8(a.W), f32(a.WScale),
			ci(a.N), ci(a.NOut), ci(a.K), C.int(a.Epi), C.int(a.Var))
	})
}

func MatMulF16(s Stream, a *MatMulArgs) error {
	return call("vireo_matmul_f16", func() C.int {
		return C.vireo_matmul_f16(s.c(), C.int(a.DType), a.Out, ci(a.LdOut), a.X, ci(a.LdX), a.W, ci(a.N), ci(a.NOut), ci(a.K),
			C.int(a.Epi), C.int(a.Var))
	})
}

func MatMulSp24(s Stream, a *Sp24Args) error {
	return call("vireo_matmul_sp24", func() C.int {
		return C.vireo_matmul_sp24(s.c(), C.int(a.DType), a.Out, ci(a.LdOut), a.X, ci(a.LdX), f32(a.XScale), C.int(a.WDType), a.W,
			f32(a.WScale), (*C.uint8_t)(a.Meta), ci(a.N), ci(a.NOut), ci(a.K), C.int(a.Epi), C.int(a.Var))
	})
}

// MatMul2Config is row i of the kernels v2 configuration table; ok is false past its
// end. It makes no device call.
func MatMul2Config(i int) (c MM2Config, ok bool) {
	var o C.vireo_mm2_config
	if C.vireo_matmul2_config(ci(i), &o) != StatusOK {
		return c, false
	}
	return MM2Config{Kind: MM2Kind(o.kind), WarpsM: int(o.warps_m), WarpsN: int(o.warps_n), MTiles: int(o.m_tiles),
		NTiles: int(o.n_tiles), BK: int(o.bk), Stages: int(o.stages), BlockRows: int(o.block_rows),
		BlockCols: int(o.block_cols), Threads: int(o.threads), SmemBytes: int(o.smem_bytes)}, true
}

// MatMul2WorkspaceBytes is the workspace a kernels v2 call needs (0 without split-K);
// see vireo_matmul2_workspace_bytes. It makes no device call.
func MatMul2WorkspaceBytes(config, n, nOut int, epi Epilogue, split int) (int, error) {
	var b C.size_t
	err := call("vireo_matmul2_workspace_bytes", func() C.int {
		return C.vireo_matmul2_workspace_bytes(&b, ci(config), ci(n), ci(nOut), C.int(epi), ci(split))
	})
	return int(b), err
}

// MatMul2 launches a kernels v2 matrix product; see vireo_matmul2.
func MatMul2(s Stream, a *MM2Args) error {
	c := C.vireo_mm2_args{kind: C.int32_t(a.Kind), dtype: C.int32_t(a.DType), out: a.Out, ld_out: C.int32_t(a.LdOut),
		x: a.X, ld_x: C.int32_t(a.LdX), x_scale: f32(a.XScale), w: i8(a.W), w_scale: f32(a.WScale),
		n: C.int32_t(a.N), n_out: C.int32_t(a.NOut), k: C.int32_t(a.K), epilogue: C.int32_t(a.Epi),
		out2: a.Out2, ld_out2: C.int32_t(a.LdOut2), col2: C.int32_t(a.Col2),
		out3: a.Out3, ld_out3: C.int32_t(a.LdOut3), col3: C.int32_t(a.Col3),
		config: C.int32_t(a.Config), split: C.int32_t(a.Split), rows_fast: cbool(a.RowsFast), fault: C.int32_t(a.Fault),
		workspace: a.Workspace, workspace_bytes: sz(a.WorkspaceBytes),
		w4_scale: (*C.uint16_t)(a.W4Scale), w4_sub: (*C.uint8_t)(a.W4Sub), w4_mode: C.int32_t(a.W4Mode)}
	return call("vireo_matmul2", func() C.int { return C.vireo_matmul2(s.c(), &c) })
}

func cbool(b bool) C.int32_t {
	if b {
		return 1
	}
	return 0
}

// SampleWorkspaceBytes is the scratch Sample needs; zero it once after allocating.
func SampleWorkspaceBytes(rows, vocab int) (int, error) {
	var b C.size_t
	err := call("vireo_sample_workspace_bytes", func() C.int { return C.vireo_sample_workspace_bytes(&b, ci(rows), ci(vocab)) })
	return int(b), err
}

// Sample writes one token per row to out (int32 [rows]; -1: sample on the host). params
// is a device array of SamplingParams, history a device int32 array (or nil).
func Sample(s Stream, logitsType DType, logits unsafe.Pointer, ld, rows, vocab int, params, history, out, workspace unsafe.Pointer, workspaceBytes int) error {
	return call("vireo_sample", func() C.int {
		return C.vireo_sample(s.c(), C.int(logitsType), logits, ci(ld), ci(rows), ci(vocab),
			(*C.vireo_sampling_params)(params), i32(history), i32(out), workspace, sz(workspaceBytes))
	})
}

// Sample2WorkspaceBytes is the workspace Sample2 needs for rows × vocab with chunk
// (zeroed once after allocation); see vireo_sample2_workspace_bytes.
func Sample2WorkspaceBytes(rows, vocab, chunk int) (int, error) {
	var b C.size_t
	err := call("vireo_sample2_workspace_bytes", func() C.int {
		return C.vireo_sample2_workspace_bytes(&b, ci(rows), ci(vocab), ci(chunk))
	})
	return int(b), err
}

// Sample2 is vireo_sample2 (kernels v2): Sample's tokens, never -1.
func Sample2(s Stream, logitsType DType, logits unsafe.Pointer, ld, rows, vocab int, params, history, out, workspace unsafe.Pointer, workspaceBytes int, cfg *Sample2Config) error {
	return call("vireo_sample2", func() C.int {
		return C.vireo_sample2(s.c(), C.int(logitsType), logits, ci(ld), ci(rows), ci(vocab),
			(*C.vireo_sampling_params)(params), i32(history), i32(out), workspace, sz(workspaceBytes),
			(*C.vireo_sample2_config)(unsafe.Pointer(cfg)))
	})
}

// KVIndex fills, from device pos and seq (int32 [n]) and tables (int32
// [nTables][maxBlocks]), the metadata of WriteKV (slots int32 [n]) and Attention (seqs
// int32 [n][4], rowSeq int32 [n]) on the device; see vireo_kv_index.
func KVIndex(s Stream, pos, seq, tables unsafe.Pointer, n, nTables, maxBlocks, blockSize, numBlocks, maxCtx int, slots, seqs, rowSeq unsafe.Pointer) error {
	return call("vireo_kv_index", func() C.int {
		return C.vireo_kv_index(s.c(), i32(pos), i32(seq), i32(tables), ci(n), ci(nTables), ci(maxBlocks), ci(blockSize),
			ci(numBlocks), ci(maxCtx), i32(slots), i32(seqs), i32(rowSeq))
	})
}

// DecodeAdvance is one step of a device decode loop after Sample; see
// vireo_decode_advance and DecodeAdvanceArgs.
func DecodeAdvance(s Stream, a *DecodeAdvanceArgs) error {
	return call("vireo_decode_advance", func() C.int {
		return C.vireo_decode_advance(s.c(), ci(a.Rows), i32(a.IDs), i32(a.Pos), i32(a.Limit), i32(a.StopIDs),
			i32(a.StopCount), i32(a.Next), (*C.vireo_sampling_params)(a.Params), i32(a.History), i32(a.Out))
	})
}

// PhiloxUniform computes runtime/sampling.Uniform on the device: out f32 [n] from
// seeds, indices uint64 [n].
func PhiloxUniform(s Stream, out, seeds, indices unsafe.Pointer, n int, streamID uint32) error {
	return call("vireo_philox_uniform", func() C.int {
		return C.vireo_philox_uniform(s.c(), f32(out), (*C.uint64_t)(seeds), (*C.uint64_t)(indices), ci(n), C.uint32_t(streamID))
	})
}

// FillUniform fills n elements of dtype dt at dst with uniform draws of seed on the
// device (see vireo_fill_uniform): floats in [-scale, scale), int8 in [-127, 127].
func FillUniform(s Stream, dt DType, dst unsafe.Pointer, n int, seed uint64, scale float32) error {
	return call("vireo_fill_uniform", func() C.int {
		return C.vireo_fill_uniform(s.c(), C.int(dt), dst, sz(n), C.uint64_t(seed), C.float(scale))
	})
}

// Probe launches one tiny kernel and returns its 32 values (3*i + 1): a library
// without a kernel image for the card fails here with the CUDA error.
func Probe() ([32]int32, error) {
	var v [32]C.int
	err := call("vireo_probe", func() C.int { return C.vireo_probe(&v[0]) })
	var out [32]int32
	for i := range v {
		out[i] = int32(v[i])
	}
	return out, err
}
