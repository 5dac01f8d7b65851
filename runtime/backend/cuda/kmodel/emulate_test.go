package kmodel

import (
	"fmt"
	"strings"
	"testing"
)

// shapes of the emulated calls: row tails of every tile height (1, 9 and 17 rows in a
// 16-row fragment, 33 and 65 past 32 and 64, 130 past 128), column tails (n_out not a
// multiple of the 128- or 256-row weight tile, nor of 8, odd), k tails (k not a
// multiple of a stage, nor of the split's slices) and padded row strides.
type shape struct{ n, nOut, k, ldX, ldOut int }

func shapesFor(c Config) []shape {
	bm := c.BM()
	s := []shape{
		{1, 8, 16, 0, 0},
		{min(bm, 9), 136, 96, 0, 0},
		{bm, 2*c.BN() + 24, 2*c.BK + 48, 0, 0},                    // column tail, k tail
		{bm + 1, 40, c.BK, 0, 0},                                  // one row into the next tile
		{2*bm - 3, c.BN() - 8, 3 * c.BK, c.BK*4 + 16, c.BN() + 3}, // padded strides, odd ld_out
		{17, 7, 64, 0, 0},                                         // n_out below one fragment, odd
	}
	return s
}

// TestEmulateConfigs emulates every configuration on every shape, without and with the
// SiLU-GLU epilogue (which remaps the B tile), unsplit and split in 3 (the fixup). The
// residual add changes only how a store combines, not which element it goes to: one
// shape per configuration covers it.
func TestEmulateConfigs(t *testing.T) {
	for cfg, c := range Configs {
		if c.Kind == W4A16 {
			continue // TestEmulateW4: k in whole groups
		}
		for si, sh := range shapesFor(c) {
			for _, v := range []struct {
				epi   Epilogue
				split int
			}{{EpiNone, 1}, {EpiSiLUGLU, 1}, {EpiNone, 3}, {EpiSiLUGLU, 3}, {EpiAccumulate, 2}} {
				if v.epi == EpiAccumulate && si != 2 {
					continue
				}
				if raceEnabled && (si%2 == 1) == (v.split == 1) {
					continue // half the matrix under -race: every shape, each split
				}
				call := Call{Kind: c.Kind, N: sh.n, NOut: sh.nOut, K: sh.k, LdX: sh.ldX, LdOut: sh.ldOut, Epi: v.epi,
					Plan: Plan{Config: cfg, Split: v.split, RowsFast: si%2 == 0}, Seed: uint64(cfg*100 + v.split)}
				name := fmt.Sprintf("%s/n=%d,n_out=%d,k=%d,ld_x=%d,ld_out=%d,epi=%d,split=%d", Name(cfg), sh.n, sh.nOut, sh.k, sh.ldX, sh.ldOut, v.epi, v.split)
				checkEmulation(t, name, call)
			}
		}
	}
}

// checkEmulation emulates call and checks what every launch must do: no fault, each
// output element stored once, and at least every real product computed (twice the
// columns with the SiLU-GLU epilogue, which reads gate and up).
func checkEmulation(t *testing.T, name string, call Call) {
	t.Helper()
	r := Emulate(call)
	if err := r.Err(); err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	if r.Stores != call.N*call.NOut {
		t.Errorf("%s: %d stores, want %d", name, r.Stores, call.N*call.NOut)
	}
	nw := call.NOut
	if call.Epi == EpiSiLUGLU {
		nw *= 2
	}
	if want := int64(call.N) * int64(nw) * int64(call.K); r.Products < want {
		t.Errorf("%s: %d real products, want at least %d", name, r.Products, want)
	}
}

// Split outputs (the fused q/k/v projection): columns to three tensors, with odd
// boundaries (a pair of columns straddles one), padded strides and split-K.
func TestEmulateSplitOutputs(t *testing.T) {
	for _, cfg := range []int{0, 3, 5, 6, 8} {
		c := Configs[cfg]
		for _, v := range []struct{ n, nOut, col2, col3, ld, ld2, ld3, split int }{
			{3, 96, 64, 80, 0, 0, 0, 1},
			{c.BM() + 5, 300, 129, 211, 130, 90, 95, 3},
			{17, 40, 8, 0, 0, 0, 0, 2}, // two outputs
		} {
			call := Call{Kind: c.Kind, N: v.n, NOut: v.nOut, K: 2 * c.BK, LdOut: v.ld, Col2: v.col2, Col3: v.col3, Ld2: v.ld2, Ld3: v.ld3,
				Epi: EpiAccumulate, Plan: Plan{Config: cfg, Split: v.split, RowsFast: true}}
			r := Emulate(call)
			if err := r.Err(); err != nil {
				t.Errorf("%s %+v: %v", Name(cfg), v, err)
			} else if r.Stores != v.n*v.nOut {
				t.Errorf("%s %+v: %d stores", Name(cfg), v, r.Stores)
			}
		}
	}
}

// The emulator catches the deliberate faults the GPU run demonstrates on the card, and
// mapping bugs of the kind it exists for.
func TestEmulateCatchesFaults(t *testing.T) {
	for _, cfg := range []int{0, 4, 6, 8} {
		c := Configs[cfg]
		base := Call{Kind: c.Kind, N: c.BM() + 3, NOut: 72, K: 3 * c.BK, Plan: Plan{Config: cfg, Split: 2, RowsFast: true}}
		for _, f := range []Fault{FaultKStep, FaultRow} {
			call := base
			call.Fault = f
			if r := Emulate(call); r.Violations == 0 {
				t.Errorf("%s fault %d: not caught", Name(cfg), f)
			}
		}
		if r := Emulate(base); r.Violations != 0 {
			t.Errorf("%s without a fault: %v", Name(cfg), r.Err())
		}
	}
}

// A broken index map inside the emulated kernel must be caught: swap the gate/up halves
// of the GLU B tile in the loads only, and mis-pair the B fragment's k chunks.
func TestEmulateCatchesBrokenMaps(t *testing.T) {
	call := Call{Kind: W8A16, N: 5, NOut: 40, K: 1024, Epi: EpiSiLUGLU, Plan: Plan{Config: 0, Split: 1}}
	if r := Emulate(call); r.Violations != 0 {
		t.Fatalf("clean: %v", r.Err())
	}
	for _, brk := range []struct {
		name string
		set  func(*breakage)
	}{
		{"gate/up swapped in the B copy", func(b *breakage) { b.swapGLU = true }},
		{"B ldmatrix chunk order reversed", func(b *breakage) { b.reverseChunks = true }},
		{"A read one 4-half step off", func(b *breakage) { b.aOffset = 8 }},
		{"last pipeline stage prefetched into a live slot", func(b *breakage) { b.prefetchEarly = true }},
	} {
		t.Run(brk.name, func(t *testing.T) {
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

func TestPlanBatchInvariantSplit(t *testing.T) {
	p := Policy{SMs: 132, Tuning: Default()}
	for _, w := range [][3]int{{6144, 4096, 0}, {4096, 4096, 0}, {14336, 4096, 2}, {4096, 14336, 0}, {128256, 4096, 0}, {7, 96, 0}} {
		nOut, k, epi := w[0], w[1], Epilogue(w[2])
		first := p.Plan(W8A16, 1, nOut, k, epi).Split
		for _, n := range []int{2, 8, 16, 17, 32, 33, 64, 65, 128, 256} {
			if s := p.Plan(W8A16, n, nOut, k, epi).Split; s != first {
				t.Errorf("W8A16 [%d][%d]: split %d at %d rows, %d at 1: the rows of a step would change numerics", nOut, k, s, n, first)
			}
		}
	}
	// Llama-3-8B at batch 1 on 132 SMs: qkv, o and down split, gate/up and the classifier do not.
	for _, c := range []struct{ nOut, k, epi, want int }{{6144, 4096, 0, 6}, {4096, 4096, 0, 8}, {4096, 14336, 0, 8}, {14336, 4096, 2, 1}, {128256, 4096, 0, 1}} {
		if s := p.Plan(W8A16, 1, c.nOut, c.k, Epilogue(c.epi)).Split; s != c.want {
			t.Errorf("[%d][%d] epi %d: split %d, want %d", c.nOut, c.k, c.epi, s, c.want)
		}
	}
}

func TestPlanConfigs(t *testing.T) {
	p := Policy{Tuning: Default()}
	for _, c := range []struct {
		kind Kind
		n    int
		want int
	}{{W8A16, 1, 0}, {W8A16, 16, 0}, {W8A16, 17, 3}, {W8A16, 64, 4}, {W8A16, 65, 5}, {W8A16, 256, 5},
		{W8A8, 1, 8}, {W8A8, 17, 9}, {W8A8, 2048, 6}} {
		pl := p.Plan(c.kind, c.n, 4096, 4096, EpiNone)
		if pl.Config != c.want || Configs[pl.Config].Kind != c.kind {
			t.Errorf("%s n=%d: config %d, want %d", c.kind, c.n, pl.Config, c.want)
		}
	}
	// W8A8 at 2048 rows fills the card without a split; a few prompt rows of a narrow weight split.
	if s := p.Plan(W8A8, 2048, 4096, 4096, EpiNone).Split; s != 1 {
		t.Errorf("W8A8 2048 rows: split %d", s)
	}
	if s := p.Plan(W8A8, 5, 4096, 4096, EpiNone).Split; s <= 1 {
		t.Errorf("W8A8 5 rows × 4096: split %d, want > 1", s)
	}
}

func TestParseTuning(t *testing.T) {
	tu, err := ParseTuning("w8a16=2, split16=4,w8a8=7,blocks=3,split8=2")
	if err != nil {
		t.Fatal(err)
	}
	if tu != (Tuning{W8A16Config: 2, W8A8Config: 7, W8A16Split: 4, W8A8Split: 2, BlocksPerSM: 3, W4A16Config: -1}) {
		t.Errorf("parsed %+v", tu)
	}
	if back, err := ParseTuning(tu.String()); err != nil || back != tu {
		t.Errorf("round trip %q: %+v %v", tu.String(), back, err)
	}
	tu, err = ParseTuning("w4a16=13,split4=5")
	if err != nil || tu.W4A16Config != 13 || tu.W4A16Split != 5 || tu.W8A16Config != -1 {
		t.Errorf("w4a16 keys: %+v %v", tu, err)
	}
	if back, err := ParseTuning(tu.String()); err != nil || back != tu {
		t.Errorf("round trip %q: %+v %v", tu.String(), back, err)
	}
	for _, bad := range []string{"w8a16=6", "w8a8=0", "split16=65", "x=1", "w8a16", "blocks=-1", "w4a16=0", "w8a16=10", "split4=65"} {
		if _, err := ParseTuning(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if tu, err := ParseTuning(""); err != nil || tu != Default() {
		t.Errorf("empty: %+v %v", tu, err)
	}
}
