package backend

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/vireo-ai/vireo/runtime/sampling"
)

// DType is an element type of a backend tensor.
type DType uint8

const (
	F32 DType = iota
	F16
	BF16
	I8
	I32
	// Q8_0 is GGUF's block type of the same name: blocks of 32 values, each an IEEE
	// half scale d followed by 32 int8 q (34 bytes), value = d·q. Only weights have it.
	Q8_0
	// GGUF's other block types, laid out exactly as the file stores them
	// (runtime/quant/ggml documents each): 32-value blocks Q4_0, Q4_1, Q5_0, Q5_1 and
	// the 256-value K-quant super-blocks Q2_K … Q6_K. Only weights have them.
	Q4_0
	Q4_1
	Q5_0
	Q5_1
	Q2_K
	Q3_K
	Q4_K
	Q5_K
	Q6_K
)

// blockTypes: values and bytes per block of each block type, and its name.
var blockTypes = map[DType]struct {
	values, bytes int
	name          string
}{
	Q8_0: {32, 34, "q8_0"}, Q4_0: {32, 18, "q4_0"}, Q4_1: {32, 20, "q4_1"}, Q5_0: {32, 22, "q5_0"},
	Q5_1: {32, 24, "q5_1"}, Q2_K: {256, 84, "q2_k"}, Q3_K: {256, 110, "q3_k"}, Q4_K: {256, 144, "q4_k"},
	Q5_K: {256, 176, "q5_k"}, Q6_K: {256, 210, "q6_k"},
}

// Size is the element size in bytes (0 for block types: see Block).
func (d DType) Size() int {
	switch d {
	case F32, I32:
		return 4
	case F16, BF16:
		return 2
	case I8:
		return 1
	}
	return 0
}

// Block returns how many values a block of a block-quantized type holds and its size
// in bytes (Q8_0: 32 and 34); 0, 0 for element types.
func (d DType) Block() (values, bytes int) {
	b := blockTypes[d]
	return b.values, b.bytes
}

// RowBytes is the size of a row of n values of type d, or -1 when n is not a whole
// number of blocks.
func (d DType) RowBytes(n int) int {
	if v, b := d.Block(); v > 0 {
		if n%v != 0 {
			return -1
		}
		return n / v * b
	}
	return n * d.Size()
}

func (d DType) String() string {
	switch d {
	case F32:
		return "f32"
	case F16:
		return "f16"
	case BF16:
		return "bf16"
	case I8:
		return "i8"
	case I32:
		return "i32"
	}
	if b, ok := blockTypes[d]; ok {
		return b.name
	}
	return fmt.Sprintf("dtype(%d)", uint8(d))
}

// Buffer is storage owned by a backend; only that backend looks inside.
type Buffer interface {
	Len() int // elements
}

// Tensor is a row-major 2-D view [Rows][Cols] of a Buffer starting at element Off.
// It is a value: slicing rows allocates nothing.
type Tensor struct {
	DType      DType
	Rows, Cols int
	Off        int
	Buf        Buffer
}

// Len is Rows*Cols.
func (t Tensor) Len() int { return t.Rows * t.Cols }

// SliceRows returns rows [r0, r1) of t.
func (t Tensor) SliceRows(r0, r1 int) Tensor {
	if r0 < 0 || r1 < r0 || r1 > t.Rows {
		panic(fmt.Sprintf("backend: SliceRows(%d, %d) of %d rows", r0, r1, t.Rows))
	}
	t.Off += r0 * t.Cols
	t.Rows = r1 - r0
	return t
}

// View returns the [rows][cols] tensor whose elements start at element off of t's
// (t is contiguous: its elements are t.Len() consecutive ones of its buffer).
func (t Tensor) View(off, rows, cols int) Tensor {
	if off < 0 || rows < 0 || cols < 0 || off+rows*cols > t.Len() {
		panic(fmt.Sprintf("backend: View(%d, %d, %d) of %s", off, rows, cols, t))
	}
	return Tensor{DType: t.DType, Rows: rows, Cols: cols, Off: t.Off + off, Buf: t.Buf}
}

func (t Tensor) String() string { return fmt.Sprintf("%s[%d][%d]", t.DType, t.Rows, t.Cols) }

// Bytes views a host slice as the little-endian bytes Upload and Download move, without
// copying (the hosts Vireo runs on are little-endian).
func Bytes[T float32 | int32 | int8 | uint16](s []T) []byte {
	var z T
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(z)))
}

// Weight is a linear layer's matrix [Out][In] (row j produces output j): int8 with one
// fp32 scale per row, float, or a block-quantized type (W.DType Q8_0, Q4_K, …: each row
// is In/block blocks, the scales inside them). Kind says how the matrix is stored
// (kinds.go): dense, a low-rank pair of factor weights, or 2:4 sparse (W then holds the
// kept values).
type Weight struct {
	Name    string
	Out, In int
	W       Tensor // [Out][In]; Sparse24: [Out][In/2] kept values; LowRank: unused
	Scales  Tensor // [Out] f32; only for I8
	Kind    WeightKind
	Meta    Tensor  // Sparse24: [Out][Sparse24MetaStride(In)] metadata bytes (I8)
	A, B    *Weight // LowRank: W ≈ B·A with A [Rank][In], B [Out][Rank], both dense
}

// HostWeight is a weight in host memory, handed to Backend.LoadWeight. The CPU backend
// keeps the slices it is given (they may alias a memory-mapped file); a device backend
// copies them.
type HostWeight struct {
	Name    string
	Out, In int
	F32     []float32 // [Out*In], or nil
	I8      []int8    // [Out*In], or nil
	Scales  []float32 // [Out] for I8
	// Source names the GGUF block-quantized type ("Q4_K", "Q8_0") F32 was dequantized
	// from at load; "" when the checkpoint held floats. A backend without kernels for
	// those types keeps such weights as int8 rather than expanding them to 16 bits
	// (Int8FromBlocks).
	Source string
	// Blocks is the matrix in a block-quantized layout exactly as a GGUF file stores it
	// (BlockType, e.g. Q8_0): Out rows of BlockType.RowBytes(In) bytes. Only a backend
	// that reports it can multiply that type natively (BlockLoader) is handed one.
	Blocks    []byte
	BlockType DType
	// Kind is the storage kind (kinds.go). Sparse24: F32 or I8 hold [Out][In/2] kept
	// values (Scales [Out] for I8) and Meta their positions. LowRank: F32 and I8 are nil
	// and A [Rank][In], B [Out][Rank] are the dense factors.
	Kind WeightKind
	Meta []byte
	A, B *HostWeight
}

// Validate checks that exactly one payload is present and the sizes agree.
func (h *HostWeight) Validate() error {
	switch h.Kind {
	case Dense:
	case LowRank, Sparse24:
		return h.validateKind()
	default:
		return fmt.Errorf("weight %q: unknown kind %d", h.Name, h.Kind)
	}
	n := h.Out * h.In
	payloads := 0
	for _, set := range []bool{h.F32 != nil, h.I8 != nil, h.Blocks != nil} {
		if set {
			payloads++
		}
	}
	switch {
	case h.Out <= 0 || h.In <= 0:
		return fmt.Errorf("weight %q: bad shape [%d][%d]", h.Name, h.Out, h.In)
	case payloads != 1:
		return fmt.Errorf("weight %q: need exactly one of f32, i8 or block data", h.Name)
	case h.F32 != nil && len(h.F32) < n:
		return fmt.Errorf("weight %q: %d floats for shape [%d][%d]", h.Name, len(h.F32), h.Out, h.In)
	case h.I8 != nil && (len(h.I8) < n || len(h.Scales) < h.Out):
		return fmt.Errorf("weight %q: %d int8 values and %d scales for shape [%d][%d]", h.Name, len(h.I8), len(h.Scales), h.Out, h.In)
	case h.Blocks != nil:
		v, _ := h.BlockType.Block()
		if v == 0 {
			return fmt.Errorf("weight %q: %s is not a block type", h.Name, h.BlockType)
		}
		rb := h.BlockType.RowBytes(h.In)
		if rb < 0 {
			return fmt.Errorf("weight %q: %s rows of %d values are not whole blocks of %d", h.Name, h.BlockType, h.In, v)
		}
		if len(h.Blocks) < h.Out*rb {
			return fmt.Errorf("weight %q: %d bytes of %s for shape [%d][%d] (need %d)", h.Name, len(h.Blocks), h.BlockType, h.Out, h.In, h.Out*rb)
		}
	}
	return nil
}

// BlockLoader is a backend that keeps weights of some block-quantized types as they are
// stored and multiplies them natively: LoadWeight accepts HostWeight.Blocks of every
// type LoadsBlocks reports. Others get such weights converted by the model.
type BlockLoader interface {
	LoadsBlocks(t DType) bool
}

// HostReader is a backend whose weights are the very host slices LoadWeight is given,
// read in place by every op (the CPU backend), rather than copied to a device. The
// model then decides where those bytes live: see model.Options.
type HostReader interface {
	ReadsHostWeights() bool
}

// BlockGatherer is a BlockLoader whose Embed does not take every block type it loads for
// MatMul: GathersBlocks reports those it does. The model loads the embedding table of
// another type the way it would without native blocks (the CUDA backend: W4A16 weights
// multiply, an int8 table gathers).
type BlockGatherer interface {
	GathersBlocks(t DType) bool
}

// Epilogue is what MatMul fuses (Accumulate and SiLUGLU exclude each other) and the
// role of its rows (Prompt).
type Epilogue struct {
	Accumulate bool // out += x·Wᵀ (the residual add) instead of out = x·Wᵀ
	// SiLUGLU: W holds 2·n rows, the gate rows then the up rows, for out [..][n]:
	// out[i][j] = silu(x[i]·W[j]) · (x[i]·W[n+j]), the FFN's gate and up projections and
	// SiLUMul in one pass.
	SiLUGLU bool
	// Prompt says every row of the call is a prompt token (a prefill chunk); false, a
	// generated one (a decode or verification row). It is the activation precision
	// hint: with int8 weights a backend may quantize prompt rows' activations per token
	// and multiply int8 by int8 (W8A8: the CUDA backend by default, the CPU backend with
	// cpu.Options.W8A8), while generated rows keep their activations (W8A16). A backend
	// decides from this flag, the weight and its options only, never from the row count,
	// so a row's numerics follow its role and not its batch (model.Seq.Prompt).
	Prompt bool
}

// SplitMatMuler is a backend that multiplies one weight into several outputs in one
// call: the columns of x·Wᵀ are cut, in order, into outs (out i [n][cols_i], Σ cols_i =
// W.Out, at most 3), as MatMul into one output would compute them, with
// epi.Accumulate and epi.Prompt as MatMul takes them (SiLUGLU is refused). The model
// fuses q/k/v (and gate/up) into one weight at load for such a backend and issues one
// call where it would issue three (runtime/model).
type SplitMatMuler interface {
	MatMulSplit(s Stream, outs []Tensor, x Tensor, w *Weight, epi Epilogue) error
}

// RMSNormQuanter is a backend whose RMSNorm can also quantize its result per token
// for a W8A8 product (the activation quantization fused into the norm before it).
type RMSNormQuanter interface {
	// RMSNormQuant normalizes each row of x [n][dim] as RMSNorm does (y, rounded to the
	// activation type), then writes q [n][dim] (I8) and scales [1][n] (F32): scale =
	// max|y|/127 (1 for a zero row), q = y/scale rounded half to even, clamped to ±127,
	// so y ≈ q·scale. w is [1][dim].
	RMSNormQuant(s Stream, q, scales, x, w Tensor, eps float32) error
}

// RopeStyle selects how RoPE pairs a head's dimensions.
type RopeStyle int

const (
	RopePairs      RopeStyle = iota // (2i, 2i+1): llama2.c, GGUF
	RopeRotateHalf                  // (i, i+d/2): HF checkpoints
)

// RoPE describes the rotary embedding. InvFreq holds one inverse frequency per pair,
// with any scaling (Llama 3) already applied.
type RoPE struct {
	Style   RopeStyle
	HeadDim int
	InvFreq []float32 // [HeadDim/2]
}

// KVCache is the paged cache: per layer, K and V pools of
// [Blocks][KVHeads][BlockSize][HeadDim], each a Tensor of
// Rows=Blocks*KVHeads*BlockSize, Cols=HeadDim.
type KVCache struct {
	Layers, Blocks, BlockSize, KVHeads, HeadDim int
	K, V                                        []Tensor // [Layers]
}

// KVIndex says where the rows of a pass sit in the paged cache: row i is position
// Pos[i] of the sequence whose block table is row Seq[i] of Tables. Its K and V go to
// slot Tables[Seq[i]][Pos[i]/BlockSize]·BlockSize + Pos[i]%BlockSize, and its query
// attends to positions 0..Pos[i] of that sequence (causal: the rows of a prefill chunk
// are consecutive positions of one sequence). The tensors are I32 tensors of the
// backend, read on the device; nothing an op does depends on their values on the host.
//
// A row is idle when Pos[i] < 0 (bucket padding, a row that ended in a device loop)
// and invalid when its index data is out of range: Seq[i] outside [0, Tables.Rows),
// Pos[i]/BlockSize not below the table's width, a table entry it reads outside
// [0, Blocks), or (attention only) Pos[i]+1 > MaxCtx. WriteKV skips such rows and
// Attention writes them as zeros: an op never fails on the values of device data.
// Whoever builds a KVIndex from host data (model.Forward) validates it first.
type KVIndex struct {
	Pos    Tensor // [1][n] i32
	Seq    Tensor // [1][n] i32
	Tables Tensor // [seqs][width] i32: block ids; entries past a context are never read
	// MaxCtx bounds Pos[i]+1 over the rows Attention computes, and fixes its launch
	// shape (a captured step keeps it; an eager pass gives its largest context).
	MaxCtx int
}

// AttnHeads are the head counts of an attention: query head h reads KV head
// h/(Heads/KVHeads).
type AttnHeads struct {
	Heads, KVHeads, HeadDim int
	Scale                   float32 // usually 1/sqrt(HeadDim)
}

// Stream is an ordered queue of work: a CUDA stream, or a goroutine lane on the CPU.
type Stream interface{ ID() int }

// Event marks a point in a stream's work.
type Event interface{ Done() bool }

// Backend runs the model's operations. The ops (Embed .. GatherRows) are issued on a
// stream and may run later, in the stream's order; their index inputs (token ids,
// positions, block tables, rows) are I32 tensors of the backend, never host slices, so
// one op set serves eager passes and captured graphs alike. See doc.go.
type Backend interface {
	Name() string
	// Activations is the element type the ops take activations in (F32 on the CPU,
	// F16 or BF16 on a GPU); AllocKV's caches hold it too.
	Activations() DType
	Alloc(dt DType, rows, cols int) (Tensor, error)
	// Upload copies src, dst.Len() little-endian values of type dt, into dst, converting
	// when dt is F32 and dst is F16 or BF16 (any other pair of different types is not
	// supported). It returns once ops issued afterwards, on any stream, read the bytes.
	Upload(dst Tensor, src []byte, dt DType) error
	// Download copies src into dst as src.Len() values of type dt (F32 from F16 or
	// BF16 converts), after the work issued so far that writes src.
	Download(dst []byte, dt DType, src Tensor) error
	LoadWeight(h *HostWeight) (*Weight, error)
	AllocKV(layers, blocks, blockSize, kvHeads, headDim int) (*KVCache, error)
	NewStream() (Stream, error)
	// Stage makes host index data an I32 tensor [1][len(v)] that the ops issued on s
	// read in order: the CPU reads v in place (do not change it until they ran), a GPU
	// copies it into the stream's staging arena, asynchronously. Ops reading it must be
	// issued before the next Stage or Sync on s; a capture refuses Stage (a replayed
	// step reads fixed device buffers instead).
	Stage(s Stream, v []int32) (Tensor, error)

	// Embed writes table row ids[i] into out row i; a row whose id is outside
	// [0, table.Out) is zero. ids [1][n] i32; out [n][table.In].
	Embed(s Stream, out Tensor, table *Weight, ids Tensor) error
	// RMSNorm: out[i] = x[i] / rms(x[i]) * w. out, x [n][dim]; w [1][dim].
	RMSNorm(s Stream, out, x, w Tensor, eps float32) error
	// MatMul: out[i][j] (+)= scale[j] * Σ_k x[i][k]·W[j][k]. out [n][Out]; x [n][In]
	// (with Epilogue.SiLUGLU, out [n][Out/2]).
	MatMul(s Stream, out, x Tensor, w *Weight, epi Epilogue) error
	// RoPE rotates each head of row i of x [n][heads*HeadDim] to position pos[i]; rows
	// with pos[i] < 0 stay as they are. pos [1][n] i32.
	RoPE(s Stream, x, pos Tensor, r *RoPE) error
	// WriteKV stores row i of k, v [n][kvHeads*headDim] in layer's cache at the slot at
	// says, skipping idle and invalid rows (see KVIndex).
	WriteKV(s Stream, kv *KVCache, layer int, k, v Tensor, at *KVIndex) error
	// Attention: causal paged attention of q [n][heads*headDim] over layer's cache for
	// the rows at locates, into out [n][heads*headDim]; idle and invalid rows are zero.
	Attention(s Stream, out, q Tensor, kv *KVCache, layer int, at *KVIndex, h *AttnHeads) error
	// SiLUMul: out = silu(gate) * up, all [n][hidden].
	SiLUMul(s Stream, out, gate, up Tensor) error
	// GatherRows copies x row rows[i] to out row i; a row outside [0, x.Rows) gives
	// zeros. rows [1][n] i32.
	GatherRows(s Stream, out, x, rows Tensor) error

	Record(s Stream) (Event, error)
	Wait(s Stream, e Event) error
	Sync(s Stream) error
}

// RandomWeightLoader is a backend that draws a synthetic float weight [out][in] of
// uniform(-a, a) values from seed on its own device, so a synthetic model of a large
// shape is not drawn on one host thread and copied. The values need not equal any
// other backend's draw of the same seed.
type RandomWeightLoader interface {
	LoadRandomWeight(name string, out, in int, seed uint64, a float32) (*Weight, error)
}

// Graph is stream work captured once and replayed: a CUDA graph.
type Graph interface {
	// Launch replays the captured work on s, asynchronously, in s's order.
	Launch(s Stream) error
	// Destroy frees the graph; it must not be running.
	Destroy() error
}

// GraphCapturer is a backend that can record the ops issued on a stream into a Graph
// instead of running them (CUDA stream capture). Between BeginCapture and EndCapture
// nothing issued on s runs; anything that would make the host wait for the device
// (Upload, Download, Sync, a staging buffer that must grow) fails, and the capture
// with it. A replay reads the same device buffers and kernel arguments as the capture:
// whatever varies per replay must live in device memory the graph reads.
type GraphCapturer interface {
	BeginCapture(s Stream) error
	EndCapture(s Stream) (Graph, error)
}

// DecodeIO are the fixed device buffers of a captured decode step for a batch-size
// bucket of Rows sequences: row i is the token IDs[i] at position Pos[i] of the
// sequence whose block table is Tables row i. The step reads IDs, Pos, Seq and Tables
// (as a KVIndex) and writes Logits (one row per sequence). Whoever captures the step
// allocates them; DecodeLoop fills IDs, Pos and Tables.
type DecodeIO struct {
	Rows, MaxBlocks int
	IDs, Pos        Tensor // [1][Rows] i32
	Seq             Tensor // [1][Rows] i32: 0, 1, ..., Rows-1, written once
	Tables          Tensor // [Rows][MaxBlocks] i32
	Logits          Tensor // [Rows][vocab] in the activation type
}

// Index is the KVIndex of io's rows for a step captured with contexts up to maxCtx.
func (io *DecodeIO) Index(maxCtx int) KVIndex {
	return KVIndex{Pos: io.Pos, Seq: io.Seq, Tables: io.Tables, MaxCtx: maxCtx}
}

// DecodeRow is one sequence of a device decode loop.
type DecodeRow struct {
	ID     int32   // the token at Pos: the last one accepted
	Pos    int32   // its position; the cache holds positions [0, Pos)
	Limit  int32   // the row computes positions Pos .. Limit-1 at most (the plan reserved their slots)
	Blocks []int32 // block table covering positions [0, Limit); at most MaxBlocks entries

	sampling.Params         // how the row's tokens are drawn (Seed keys the draws)
	Index           uint64  // draw number of the token sampled at Pos (sampling.Uniform's index); +1 per step
	History         []int32 // ids the penalties count (read only when Params.Penalizes); each sampled token is appended on the device
	Stop            []int32 // ids that end the row once sampled (at most MaxStopIDs)
}

// MaxStopIDs is the most stop ids a DecodeRow may carry.
const MaxStopIDs = 8

// Tokens a DecodeLoop reports in place of a sampled id.
const (
	TokenEnded = -1 // the row had ended before this step (a stop id, its Limit, or idle)
	TokenHost  = -2 // the device could not sample this row (sampling.Sampler must): the row ended here, nothing sampled
)

// DecodeLooper runs a captured decode step several times on s without returning to
// the host. DecodeLoop copies rows into io's buffers (asynchronously, in s's order;
// rows beyond len(rows) up to io.Rows are idle), then steps times: replays step,
// samples every active row's logits on the device exactly as sampling.Sampler.Sample
// would (params, Index, History), writes the token into IDs for the next replay,
// advances Pos, and ends the row (Pos = -1: the finished mask) when it sampled a Stop
// id or the next position reaches Limit. Each step's tokens are copied asynchronously
// into pinned host memory: tokens[k*io.Rows+r] is row r's token of step k, TokenEnded
// after the row ended, TokenHost where the device sampler gave up. tokens is valid once
// done has completed and until the next DecodeLoop on the same io.
type DecodeLooper interface {
	GraphCapturer
	DecodeLoop(s Stream, step Graph, io *DecodeIO, rows []DecodeRow, steps int) (tokens []int32, done Event, err error)
}

// ErrShape reports operands whose shapes do not fit an op.
var ErrShape = errors.New("shape mismatch")

// ShapeError names the op and the offending shapes.
func ShapeError(op string, format string, args ...any) error {
	return fmt.Errorf("%s: %w: %s", op, ErrShape, fmt.Sprintf(format, args...))
}
