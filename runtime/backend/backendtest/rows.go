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
