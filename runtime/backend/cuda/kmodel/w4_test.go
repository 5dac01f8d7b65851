package kmodel

import (
	"fmt"
	"strings"
	"testing"
)

// w4Shapes are W4A16 calls of configuration c: row tails of its tile (1, 9 and 17 rows
// of a 16-row fragment, one row into the next tile, an odd count of two tiles), column
// tails (n_out not a multiple of the weight tile, nor of 8, odd), k tails (k not a
// multiple of a 128-k stage: a lone 32-k group, or 1.25 stages), padded row strides.
// Affine (Q4_K-derived) weights take k in whole 256-k super-blocks.
func w4Shapes(c Config, affine bool) []shape {
	bm := c.BM()
	if affine {
		return []shape{
			{1, 8, 256, 0, 0},
			{min(bm, 9), 136, 768, 0, 0},
			{bm, c.BN() + 24, 512, 0, 0},
			{2*bm - 3, 40, 256, 264, 43},
			{17, 7, 256, 0, 0},
		}
	}
	return []shape{
		{1, 8, 32, 0, 0},
		{min(bm, 9), 136, 96, 0, 0},
		{bm, c.BN() + 24, c.BK + 32, 0, 0},
		{bm + 1, 40, c.BK, 0, 0},
		{2*bm - 3, 56, 2 * c.BK, 2*c.BK + 16, 59},
		{17, 7, 64, 0, 0},
	}
}

func w4Configs() (out []int) {
	for i, c := range Configs {
		if c.Kind == W4A16 {
			out = append(out, i)
		}
	}
	return out
}

// TestEmulateW4 emulates every W4A16 configuration, Sym (Q4_0) and Affine (Q4_K), on
// its shapes, plain, with SiLU-GLU and the residual add, unsplit and split (slices of
// whole groups): every output element stored once, its accumulator the sum over every
// k of x[row][k]·W[col][k] exactly once, each group's products scaled by that group's
// scale of that weight row, Affine's offsets by the same group's activation sum.
func TestEmulateW4(t *testing.T) {
	cfgs := w4Configs()
	if len(cfgs) != 4 {
		t.Fatalf("W4A16 configurations %v", cfgs)
	}
	for _, cfg := range cfgs {
		c := Configs[cfg]
		for _, affine := range []bool{false, true} {
			for si, sh := range w4Shapes(c, affine) {
				for vi, v := range []struct {
					epi   Epilogue
					split int
				}{{EpiNone, 1}, {EpiSiLUGLU, 1}, {EpiNone, 3}, {EpiSiLUGLU, 2}, {EpiAccumulate, 2}} {
					// Each shape runs every other variant (each variant still meets every
					// configuration on three shapes); under -race one in four.
					if (si+vi)%2 == 1 || (raceEnabled && (si+vi)%4 != 0) {
						continue
					}
					call := Call{Kind: W4A16, N: sh.n, NOut: sh.nOut, K: sh.k, LdX: sh.ldX, LdOut: sh.ldOut, Epi: v.epi,
						Plan: Plan{Config: cfg, Split: v.split, RowsFast: si%2 == 0}, Seed: uint64(cfg*100 + v.split), Affine: affine}
					name := fmt.Sprintf("%s/affine=%v,n=%d,n_out=%d,k=%d,ld_x=%d,ld_out=%d,epi=%d,split=%d", Name(cfg), affine, sh.n, sh.nOut, sh.k, sh.ldX, sh.ldOut, v.epi, v.split)
					checkEmulation(t, name, call)
				}
			}
		}
	}
}

// TestEmulateW4SplitOutputs: the fused q/k/v projection on W4A16 weights.
func TestEmulateW4SplitOutputs(t *testing.T) {
	for _, cfg := range []int{10, 13} {
		c := Configs[cfg]
		for _, v := range []struct{ n, nOut, col2, col3, ld, ld2, ld3, split int }{
			{3, 96, 64, 80, 0, 0, 0, 1},
			{c.BM() + 5, 300, 129, 211, 130, 90, 95, 3},
		} {
			call := Call{Kind: W4A16, N: v.n, NOut: v.nOut, K: 512, LdOut: v.ld, Col2: v.col2, Col3: v.col3, Ld2: v.ld2, Ld3: v.ld3,
				Epi: EpiAccumulate, Plan: Plan{Config: cfg, Split: v.split, RowsFast: true}, Affine: v.split > 1}
			r := Emulate(call)
			if err := r.Err(); err != nil {
				t.Errorf("%s %+v: %v", Name(cfg), v, err)
			} else if r.Stores != v.n*v.nOut {
				t.Errorf("%s %+v: %d stores", Name(cfg), v, r.Stores)
			}
		}
	}
}

// The emulator catches the deliberate faults and the W4A16 mapping bugs it exists for:
// nibble pairs swapped between b0 and b1, a group scale read one group off or from the
// fragment's other column, Affine's activation sum left out, and the shared ones (B
// chunk order, A offset, GLU halves).
func TestEmulateW4CatchesBrokenMaps(t *testing.T) {
	for _, affine := range []bool{false, true} {
		call := Call{Kind: W4A16, N: 5, NOut: 40, K: 512, Epi: EpiSiLUGLU, Plan: Plan{Config: 10, Split: 2}, Affine: affine}
		if r := Emulate(call); r.Violations != 0 {
			t.Fatalf("clean (affine %v): %v", affine, r.Err())
		}
		for _, f := range []Fault{FaultKStep, FaultRow} {
			fc := call
			fc.Fault = f
			if r := Emulate(fc); r.Violations == 0 {
				t.Errorf("affine %v fault %d: not caught", affine, f)
			}
		}
		for _, brk := range []struct {
			name string
			set  func(*breakage)
		}{
			{"nibble pairs of b0 and b1 swapped", func(b *breakage) { b.w4Shift = true }},
			{"group scale one group off", func(b *breakage) { b.w4Group = 1 }},
			{"group scale of the other column", func(b *breakage) { b.w4ScaleCol = true }},
			{"offset sum skipped", func(b *breakage) { b.w4NoOffset = true }},
			{"B ldmatrix chunk order reversed", func(b *breakage) { b.reverseChunks = true }},
			{"A read one 4-half step off", func(b *breakage) { b.aOffset = 8 }},
			{"gate/up swapped in the B copy", func(b *breakage) { b.swapGLU = true }},
		} {
			if brk.name == "offset sum skipped" && !affine {
				continue // Sym has no offset
			}
			t.Run(fmt.Sprintf("affine=%v/%s", affine, brk.name), func(t *testing.T) {
				broken = breakage{}
				brk.set(&broken)
				defer func() { broken = breakage{} }()
				r := Emulate(call)
				if r.Violations == 0 {
					t.Fatalf("not caught")
				}
				t.Logf("caught: %d violations, e.g. %s", r.Violations, strings.Join(r.Errors[:min(2, len(r.Errors))], "; "))
			})
		}
	}
}

// TestPlanW4: the configuration follows the rows, the split the weight's shape only
// (batch invariance), slices are whole groups, and unsupported k are refused.
func TestPlanW4(t *testing.T) {
	p := Policy{SMs: 132, Tuning: Default()}
	for _, c := range []struct{ n, want int }{{1, 10}, {16, 10}, {17, 12}, {32, 12}, {33, 13}, {64, 13}, {256, 13}} {
		if pl := p.Plan(W4A16, c.n, 4096, 4096, EpiNone); pl.Config != c.want {
			t.Errorf("n=%d: config %d, want %d", c.n, pl.Config, c.want)
		}
	}
	for _, w := range [][3]int{{6144, 4096, 0}, {4096, 4096, 0}, {14336, 4096, 2}, {4096, 14336, 0}, {128256, 4096, 0}, {7, 256, 0}} {
		first := p.Plan(W4A16, 1, w[0], w[1], Epilogue(w[2])).Split
		for _, n := range []int{2, 16, 17, 33, 64, 65, 256} {
			if s := p.Plan(W4A16, n, w[0], w[1], Epilogue(w[2])).Split; s != first {
				t.Errorf("[%d][%d]: split %d at %d rows, %d at 1", w[0], w[1], s, n, first)
			}
		}
		if sl := SliceOf(W4A16, w[1], first); sl%32 != 0 || sl*first < w[1] {
			t.Errorf("[%d][%d] split %d: slice %d", w[0], w[1], first, sl)
		}
	}
	for _, c := range []struct {
		k      int
		affine bool
		ok     bool
	}{{32, false, true}, {48, false, false}, {256, true, true}, {288, true, false}, {0, false, false}} {
		if got := SupportedW4(c.k, c.k, c.affine); got != c.ok {
			t.Errorf("SupportedW4(%d, affine %v) = %v", c.k, c.affine, got)
		}
	}
	if r := Emulate(Call{Kind: W4A16, N: 1, NOut: 8, K: 48, Plan: Plan{Config: 10, Split: 1}}); r.Violations == 0 {
		t.Error("k = 48 emulated")
	}
}
