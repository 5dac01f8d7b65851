// Package cgo binds the C ABI of Vireo's CUDA kernels (cuda/kernels/vireo_kernels.h,
// built into build/libvireo_kernels.so) as thin Go functions. It holds the module's only
// `import "C"`, behind the `cuda` build tag; without the tag the same API returns
// ErrNoCUDA, so code above it builds everywhere.
//
// Device memory is addressed by unsafe.Pointer values that never point into Go memory.
// Every failure is an *Error naming the C op and its shapes. The C side keeps its last
// message per OS thread, so each call runs with its goroutine locked to its thread.
//
// Shapes and layouts are documented in vireo_kernels.h; the Go names follow it.
package cgo

import (
	"errors"
	"fmt"
	"unsafe"
)

// ErrNoCUDA is returned by every function of a build without the cuda tag.
var ErrNoCUDA = errors.New("this binary was built without CUDA (build it with make cuda)")

// ErrNoDevice matches (errors.Is) an *Error for a missing device or driver.
var ErrNoDevice = errors.New("no CUDA device")

// Status codes of the C ABI (enum vireo_status).
const (
	StatusOK          = 0
	StatusCUDA        = 1
	StatusArg         = 2
	StatusUnsupported = 3
	StatusNoDevice    = 4
	StatusNotReady    = 5
)

// Error is a failed ABI call.
type Error struct {
	Func string // the C function
	Code int    // vireo_status
	Msg  string // the library's message: op, shapes, CUDA error
}

func (e *Error) Error() string {
	if e.Msg == "" {
		return fmt.Sprintf("%s: status %d", e.Func, e.Code)
	}
	return e.Msg
}

// Is makes errors.Is(err, ErrNoDevice) true for missing devices and drivers.
func (e *Error) Is(target error) bool { return target == ErrNoDevice && e.Code == StatusNoDevice }

// DType values equal runtime/backend.DType and enum vireo_dtype.
type DType int32

const (
	F32  DType = 0
	F16  DType = 1
	BF16 DType = 2
	I8   DType = 3
	I32  DType = 4
)

// Epilogue is enum vireo_epilogue.
type Epilogue int32

const (
	EpiNone       Epilogue = 0
	EpiAccumulate Epilogue = 1
	EpiSiLUGLU    Epilogue = 2 // W has 2*NOut rows: gate rows, then up rows
)

// Variant is enum vireo_matmul_variant.
type Variant int32

const (
	MMAuto Variant = 0
	MMSIMT Variant = 1
	MMMMA  Variant = 2
)

// RoPE styles (enum vireo_rope_style).
const (
	RopePairs      = 0
	RopeRotateHalf = 1
)

// SampleMaxCandidates is VIREO_SAMPLE_MAX_CANDIDATES.
const SampleMaxCandidates = 4096

// Stream is a CUDA stream; the zero value is the legacy default stream.
type Stream struct{ p unsafe.Pointer }

// Event is a CUDA event.
type Event struct {
	p unsafe.Pointer //lint:ignore U1000 read by the cuda build
}

// Graph is a captured CUDA graph; GraphExec its instantiation.
type Graph struct {
	p unsafe.Pointer //lint:ignore U1000 read by the cuda build
}
type GraphExec struct {
	p unsafe.Pointer //lint:ignore U1000 read by the cuda build
}

// IsZero reports whether s is the legacy default stream.
func (s Stream) IsZero() bool { return s.p == nil }

// DeviceInfo is vireo_device_info.
type DeviceInfo struct {
	Name                   string
	Major, Minor           int
	Multiprocessors        int
	MaxThreadsPerSM        int
	L2Bytes                int
	SharedMemPerBlockOptin int
	ClockKHz, MemClockKHz  int
	MemBusBits             int
	TotalMem               uint64
}

// PeakBandwidth is the datasheet memory bandwidth in bytes/s (DDR: two transfers per
// clock); 0 when the device does not report its memory clock.
func (d DeviceInfo) PeakBandwidth() float64 {
	return 2 * float64(d.MemClockKHz) * 1e3 * float64(d.MemBusBits) / 8
}

// SamplingParams is vireo_sampling_params, byte for byte (56 bytes).
type SamplingParams struct {
	Temperature       float32
	TopP              float32
	MinP              float32
	RepetitionPenalty float32
	PresencePenalty   float32
	FrequencyPenalty  float32
	TopK              int32
	HistoryLen        int32
	HistoryOff        int64
	Seed              uint64
	TokenIndex        uint64
}

// SamplingParamsSize is the C struct's size.
const SamplingParamsSize = 56

var _ [SamplingParamsSize - unsafe.Sizeof(SamplingParams{})]struct{}
var _ [unsafe.Sizeof(SamplingParams{}) - SamplingParamsSize]struct{}

// MatMulArgs are the operands of MatMulW8A16, MatMulW8A8 and MatMulF16.
type MatMulArgs struct {
	DType  DType          // activation dtype (out, x)
	Out    unsafe.Pointer // [N][LdOut]
	LdOut  int
	X      unsafe.Pointer // [N][LdX] activations (W8A8: int8 [N][K])
	LdX    int            // W8A8: ignored (K)
	XScale unsafe.Pointer // W8A8: f32 [N]
	W      unsafe.Pointer // [NW][K]; NW = NOut, or 2*NOut for EpiSiLUGLU
	WScale unsafe.Pointer // f32 [NW] (int8 weights)
	N      int
	NOut   int
	K      int
	Epi    Epilogue
	Var    Variant
}

func (a *MatMulArgs) String() string {
	return fmt.Sprintf("n=%d n_out=%d k=%d epilogue=%d variant=%d", a.N, a.NOut, a.K, a.Epi, a.Var)
}

// Sp24Args are the operands of MatMulSp24 (vireo_matmul_sp24): 2:4 sparse weights.
type Sp24Args struct {
	DType  DType          // activation dtype (out, and x unless XScale is set)
	Out    unsafe.Pointer // [N][LdOut]
	LdOut  int
	X      unsafe.Pointer // [N][LdX] activations, or int8 [N][K] with XScale
	LdX    int
	XScale unsafe.Pointer // f32 [N] for int8 activations (W8A8), else nil
	WDType DType          // the kept values' dtype: DType, or I8
	W      unsafe.Pointer // [NOut][K/2] kept values
	WScale unsafe.Pointer // f32 [NOut] for I8 kept values
	Meta   unsafe.Pointer // [NOut][(K/4+1)/2] metadata bytes
	N      int
	NOut   int
	K      int
	Epi    Epilogue
	Var    Variant
}

func (a *Sp24Args) String() string {
	return fmt.Sprintf("2:4 n=%d n_out=%d k=%d values=%d int8-x=%v epilogue=%d variant=%d", a.N, a.NOut, a.K, a.WDType, a.XScale != nil, a.Epi, a.Var)
}

// MM2Kind is enum vireo_mm2_kind.
type MM2Kind int32

const (
	MM2W8A16 MM2Kind = 0 // int8 weights × 16-bit activations
	MM2W8A8  MM2Kind = 1 // int8 weights × int8 per-token activations
	MM2W4A16 MM2Kind = 2 // 4-bit weights with group scales (runtime/quant/w4) × 16-bit activations
)

// W4Mode is enum vireo_w4_mode (runtime/quant/w4.Mode).
type W4Mode int32

const (
	W4Sym    W4Mode = 1 // y = s·(q−8) (from Q4_0)
	W4Affine W4Mode = 2 // y = (d·sc)·q − dmin·mn (from Q4_K)
)

// MM2Fault is enum vireo_mm2_fault: a deliberate bug, for showing on a card that the
// op checks catch a broken kernel.
type MM2Fault int32

const (
	MM2FaultNone  MM2Fault = 0
	MM2FaultKStep MM2Fault = 1 // each k slice drops its last pipeline stage
	MM2FaultRow   MM2Fault = 2 // the epilogue writes each row's values one row down
)

// MM2Config is a row of the kernels v2 configuration table (vireo_mm2_config).
type MM2Config struct {
	Kind                           MM2Kind
	WarpsM, WarpsN, MTiles, NTiles int
	BK, Stages                     int
	BlockRows, BlockCols, Threads  int
	SmemBytes                      int
}

// MM2Args are the operands of MatMul2 (vireo_mm2_args).
type MM2Args struct {
	Kind       MM2Kind
	DType      DType          // activation dtype of out (and x for W8A16)
	Out        unsafe.Pointer // [N][LdOut]
	LdOut      int
	X          unsafe.Pointer // W8A16: [N][LdX] activations; W8A8: int8 [N][LdX]
	LdX        int
	XScale     unsafe.Pointer // W8A8: f32 [N]
	W          unsafe.Pointer // int8 [NW][K]; W4A16: levels [NW][K/2]
	WScale     unsafe.Pointer // f32 [NW]; unused by W4A16
	N, NOut, K int
	Epi        Epilogue
	// Split outputs: columns [Col2, Col3) to Out2 (row stride LdOut2), [Col3, NOut) to
	// Out3 (LdOut3); nil: unused.
	Out2           unsafe.Pointer
	LdOut2, Col2   int
	Out3           unsafe.Pointer
	LdOut3, Col3   int
	Config, Split  int
	RowsFast       bool
	Fault          MM2Fault
	Workspace      unsafe.Pointer
	WorkspaceBytes int
	// W4A16: the group scales (Sym [NW][K/32] f16; Affine [NW][K/256][2] f16 d, dmin),
	// Affine's sub-scales [NW][K/32][2] (6-bit scale, min) and the mode.
	W4Scale, W4Sub unsafe.Pointer
	W4Mode         W4Mode
}

func (a *MM2Args) String() string {
	s := fmt.Sprintf("n=%d n_out=%d k=%d epilogue=%d config=%d split=%d", a.N, a.NOut, a.K, a.Epi, a.Config, a.Split)
	if a.Kind == MM2W4A16 {
		s += fmt.Sprintf(" w4 mode=%d", a.W4Mode)
	}
	return s
}

// AttentionArgs are the operands of Attention; see vireo_attention.
type AttentionArgs struct {
	DType          DType
	Out, Q         unsafe.Pointer // [NRows][LdOut], [NRows][LdQ]
	LdOut, LdQ     int
	KCache, VCache unsafe.Pointer // [blocks][KVHeads][BlockSize][HeadDim]
	Seqs           unsafe.Pointer // int32 [NSeqs][4]: q0, nq, pos, block_off
	RowSeq         unsafe.Pointer // int32 [NRows]
	BlockTables    unsafe.Pointer // int32, flattened
	NRows, NSeqs   int
	Heads, KVHeads int
	HeadDim        int
	BlockSize      int
	MaxCtx         int
	Scale          float32
	Workspace      unsafe.Pointer
	WorkspaceBytes int
}

// Attention2Config is vireo_attention2_config (Go: kmodel.Attn2Config picks it).
type Attention2Config struct {
	SplitLen, MaxSplits, Warps int32 // decode: positions per split at least, splits at most, warps per block
	Prefill                    int32 // 1: prefill tiles on tensor cores
	BM, BN                     int32 // prefill: rows per block, keys per tile
	Fault                      int32 // 0, or VIREO_ATTN2_FAULT_DROP (the card's broken-variant check)
}

// Sample2Config is vireo_sample2_config (Go: kmodel.Sample2Config picks it).
type Sample2Config struct {
	Threads, Chunk int32
	Fault          int32 // 0, or VIREO_SAMPLE2_FAULT_DIGIT
}

// RMSNormArgs are the operands of RMSNorm and RMSNormQuant.
type RMSNormArgs struct {
	DType    DType
	Out      unsafe.Pointer // [N][Dim] (RMSNorm)
	Q        unsafe.Pointer // int8 [N][Dim] (RMSNormQuant)
	QScale   unsafe.Pointer // f32 [N] (RMSNormQuant)
	X        unsafe.Pointer // [N][Dim]
	Residual unsafe.Pointer // [N][Dim] or nil
	WDType   DType
	W        unsafe.Pointer // [Dim]
	N, Dim   int
	Eps      float32
}

// Decode-loop constants of vireo_kernels.h (checked against the header in cuda.go).
const (
	MaxStopIDs = 8  // VIREO_MAX_STOP_IDS
	TokenEnded = -1 // VIREO_TOKEN_ENDED
	TokenHost  = -2 // VIREO_TOKEN_HOST
)

// DecodeAdvanceArgs are the operands of DecodeAdvance (all device pointers); see
// vireo_decode_advance.
type DecodeAdvanceArgs struct {
	Rows      int
	IDs, Pos  unsafe.Pointer // int32 [Rows], updated
	Limit     unsafe.Pointer // int32 [Rows]
	StopIDs   unsafe.Pointer // int32 [Rows][MaxStopIDs]
	StopCount unsafe.Pointer // int32 [Rows]
	Next      unsafe.Pointer // int32 [Rows]: Sample's out
	Params    unsafe.Pointer // SamplingParams [Rows], updated
	History   unsafe.Pointer // int32 ids the params index into (appended to), or nil
	Out       unsafe.Pointer // int32 [Rows]: this step's tokens
}
