package kmodel

import "fmt"

// Kind is the operand types of a v2 matmul (enum vireo_mm2_kind).
type Kind int

const (
	W8A16 Kind = 0 // int8 weights × f16/bf16 activations, mma m16n8k16, fp32 sums
	W8A8  Kind = 1 // int8 weights × int8 per-token activations, mma m16n8k32, int32 sums
	// W4A16: 4-bit weights with per-32 group scales (runtime/quant/w4) × f16/bf16
	// activations, mma m16n8k16 on the exact levels into per-group fp32 sums, scaled in
	// fp32 (matmul2.cuh's compute_w4).
	W4A16 Kind = 2
)

func (k Kind) String() string {
	switch k {
	case W8A16:
		return "w8a16"
	case W8A8:
		return "w8a8"
	case W4A16:
		return "w4a16"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Epilogue is enum vireo_epilogue.
type Epilogue int

const (
	EpiNone       Epilogue = 0
	EpiAccumulate Epilogue = 1
	EpiSiLUGLU    Epilogue = 2 // W holds 2·NOut rows: gate rows, then up rows
)

// Fault is enum vireo_mm2_fault: a deliberate bug for the on-card demonstration that
// the op checks catch a broken kernel (and, here, that the emulator does).
type Fault int

const (
	FaultNone  Fault = 0
	FaultKStep Fault = 1 // each k slice drops its last pipeline stage
	FaultRow   Fault = 2 // the epilogue writes each row's values one row down
)

// Config is one row of the kernel library's configuration table
// (VIREO_MM2_*_CONFIGS in matmul2.cuh): a block of WM×WN warps, each owning MT m16
// fragments × NT n8 fragments, BK k per cp.async stage, Stages stages.
type Config struct {
	Kind                       Kind
	WM, WN, MT, NT, BK, Stages int
}

// Configs mirrors VIREO_MM2_W8A16_CONFIGS then VIREO_MM2_W8A8_CONFIGS; the index is the
// configuration number the ABI takes.
var Configs = []Config{
	{W8A16, 1, 4, 1, 4, 128, 4}, // 0: decode, 16 rows × 128 weight rows
	{W8A16, 1, 8, 1, 4, 128, 4}, // 1: decode, 16 × 256
	{W8A16, 1, 4, 1, 4, 64, 6},  // 2: decode, 64-k stages, 6 deep
	{W8A16, 1, 4, 2, 4, 64, 4},  // 3: 32 rows
	{W8A16, 2, 4, 2, 4, 64, 4},  // 4: 64 rows, 8 warps
	{W8A16, 2, 4, 4, 4, 64, 3},  // 5: 128 rows, 8 warps of 64×32
	{W8A8, 2, 4, 4, 4, 64, 4},   // 6: prefill 128×128, 8 warps of 64×32
	{W8A8, 2, 4, 4, 4, 128, 3},  // 7: the same with 128-k stages
	{W8A8, 1, 4, 1, 4, 128, 4},  // 8: a few prompt rows, 16 × 128
	{W8A8, 2, 4, 2, 4, 64, 4},   // 9: 64 × 128
	{W4A16, 1, 4, 1, 4, 128, 4}, // 10: decode, 16 × 128
	{W4A16, 1, 8, 1, 4, 128, 4}, // 11: decode, 16 × 256
	{W4A16, 1, 4, 2, 4, 128, 4}, // 12: 32 rows
	{W4A16, 2, 4, 2, 4, 128, 3}, // 13: 64 rows, 8 warps (more rows: 64-row tiles)
}

// Threads per block.
func (c Config) Threads() int { return 32 * c.WM * c.WN }

// BM is the rows of x a block computes.
func (c Config) BM() int { return 16 * c.MT * c.WM }

// BN is the weight rows a block reads (output columns: BN, or BN/2 with SiLU-GLU).
func (c Config) BN() int { return 8 * c.NT * c.WN }

// AB is the bytes of one activation element.
func (c Config) AB() int {
	if c.Kind == W8A8 {
		return 1
	}
	return 2
}

// AStride and BStride are the padded shared-memory row strides in bytes (see
// matmul2.cuh: bank-conflict-free fragment loads).
func (c Config) AStride() int {
	if c.Kind == W8A8 {
		return c.BK + 16
	}
	return 2*c.BK + 32
}

func (c Config) BStride() int { return c.BRow() + 16 }

// BRow is the weight bytes of one B tile row per stage (W4A16: two levels a byte).
func (c Config) BRow() int {
	if c.Kind == W4A16 {
		return c.BK / 2
	}
	return c.BK
}

// AChunks and BChunks are the 16-byte chunks of one A or B tile row per stage (a W4A16
// B chunk is one 32-k group).
func (c Config) AChunks() int { return c.BK * c.AB() / 16 }
func (c Config) BChunks() int { return c.BRow() / 16 }

func (c Config) aBytes() int     { return c.BM() * c.AStride() }
func (c Config) bBytes() int     { return c.BN() * c.BStride() }
func (c Config) stageBytes() int { return c.aBytes() + c.bBytes() }

// SmemBytes is the dynamic shared memory of one block.
func (c Config) SmemBytes() int { return c.Stages * c.stageBytes() }

// Acc is the accumulators per thread.
func (c Config) Acc() int { return c.MT * c.NT * 4 }

func (c Config) String() string {
	return fmt.Sprintf("%s %dx%d warps of %dx%d, bk=%d, %d stages (%d×%d tile)", c.Kind, c.WM, c.WN, 16*c.MT, 8*c.NT,
		c.BK, c.Stages, c.BM(), c.BN())
}

// Name is a short name for reports: "w8a16-c0-16x128".
func Name(cfg int) string {
	c := Configs[cfg]
	return fmt.Sprintf("%s-c%d-%dx%d", c.Kind, cfg, c.BM(), c.BN())
}

// Slice is the k length of one of split slices (vireo_matmul2: a multiple of 16).
func Slice(k, split int) int { return ((k+split-1)/split + 15) / 16 * 16 }

// SliceOf is Slice for a kind: W4A16 slices are whole 32-k groups.
func SliceOf(kind Kind, k, split int) int {
	if kind == W4A16 {
		return ((k+split-1)/split + 31) / 32 * 32
	}
	return Slice(k, split)
}

// Tiles are the row and column tiles of a call: BM rows, BN weight rows (BN/2 output
// columns with SiLU-GLU).
func Tiles(cfg, n, nOut int, epi Epilogue) (rowTiles, colTiles int) {
	c := Configs[cfg]
	cols := c.BN()
	if epi == EpiSiLUGLU {
		cols /= 2
	}
	return (n + c.BM() - 1) / c.BM(), (nOut + cols - 1) / cols
}

// WorkspaceBytes mirrors vireo_matmul2_workspace_bytes: partials of every tile and
// slice (4 bytes each, BM·BN per tile and slice), then an int32 counter per tile.
func WorkspaceBytes(cfg, n, nOut int, epi Epilogue, split int) int {
	if split <= 1 {
		return 0
	}
	c := Configs[cfg]
	rt, ct := Tiles(cfg, n, nOut, epi)
	return rt*ct*split*c.BM()*c.BN()*4 + rt*ct*4
}
