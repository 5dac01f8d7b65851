package backendtest

import "math/rand/v2"

// caseRand is the generator a case's inputs are drawn from, in Run and AttentionRows.
func caseRand(c Case) *rand.Rand { return rand.New(rand.NewPCG(c.Seed, 0x5eed)) }

// AttentionRows is the row layout Run gives an attention case (the same draw): each
// row's position and table row, whether the op computes it (else the row is idle or
// its index data out of range, and its output is zero), the block-table width and the
// MaxCtx the op is called with. A device backend's tests use it to see which of its
// kernels' paths (tiles of one sequence, tails, splits) the cases reach.
func AttentionRows(c Case) (pos, seq []int32, valid []bool, width, maxCtx int) {
	l := layoutAttention(c, caseRand(c))
	return l.pos, l.seq, l.valid, l.width, l.maxCtx
}

// drawAttention draws an attention case's layout, cache layers and queries, in this
// order (prepAttention and AttentionCaseInputs).
func drawAttention(c Case, r *rand.Rand) (attnLayout, [][]float32, []float32) {
	l := layoutAttention(c, r)
	base := attnCache(c, l, r)
	return l, base, uniform(r, len(l.pos)*c.Heads*c.HeadDim, 2)
}

// AttentionInputs are the operands Run gives an attention case (the same draws, before
// any rounding to the dtype under test): the rows (as AttentionRows), the block tables
// [len/Width][Width], the cache's block count, the queries [rows][Heads·HeadDim] and the
// K and V pools of the layer the op reads, [Blocks][KVHeads][BlockSize][HeadDim], NaN
// wherever no context of a valid row lies (a read there poisons the output).
type AttentionInputs struct {
	Pos, Seq      []int32
	Valid         []bool
	Tables        []int32
	Width, MaxCtx int
	Blocks        int
	Q, K, V       []float32
}

// AttentionCaseInputs draws c's operands as Run does; c.Op must be OpAttention. A
// device backend's tests feed them to a model of its kernels.
func AttentionCaseInputs(c Case) AttentionInputs {
	l, base, q := drawAttention(c, caseRand(c))
	return AttentionInputs{Pos: l.pos, Seq: l.seq, Valid: l.valid, Tables: l.tables, Width: l.width, MaxCtx: l.maxCtx,
		Blocks: l.blocks, Q: q, K: base[2*(kvLayers-1)], V: base[2*(kvLayers-1)+1]}
}
