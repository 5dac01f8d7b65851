package kmodel

import (
	"fmt"
	"strconv"
	"strings"
)

// Tuning overrides the dispatch policy (the GPU run's sweep; vireo-check and the CUDA
// backend take it as a string, ParseTuning). Default() keeps every default.
type Tuning struct {
	W8A16Config int // configuration for every W8A16 call; < 0: by row count
	W8A8Config  int // the same for W8A8
	W8A16Split  int // k slices of every W8A16 weight; 0: by the weight's shape
	W8A8Split   int // k slices of every W8A8 call; 0: by the call's tiles
	BlocksPerSM int // resident blocks per SM the split heuristics aim at; 0: 2
	W4A16Config int // configuration for every W4A16 call; < 0: by row count
	W4A16Split  int // k slices of every W4A16 weight; 0: by the weight's shape
}

// Default is the tuning with no overrides.
func Default() Tuning { return Tuning{W8A16Config: -1, W8A8Config: -1, W4A16Config: -1} }

// ParseTuning reads "key=value,..." with keys w8a16 and w8a8 (a configuration index),
// split16 and split8 (k slices), blocks (blocks per SM); "" is Default().
func ParseTuning(s string) (Tuning, error) {
	t := Default()
	if strings.TrimSpace(s) == "" {
		return t, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return t, fmt.Errorf("matmul tuning %q: %q is not key=value", s, kv)
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return t, fmt.Errorf("matmul tuning %q: %s: %w", s, k, err)
		}
		switch k {
		case "w8a16", "w8a8", "w4a16":
			want := map[string]Kind{"w8a16": W8A16, "w8a8": W8A8, "w4a16": W4A16}[k]
			if n < 0 || n >= len(Configs) || Configs[n].Kind != want {
				return t, fmt.Errorf("matmul tuning %q: configuration %d is not a %s one (table: %s)", s, n, want, table())
			}
			*map[Kind]*int{W8A16: &t.W8A16Config, W8A8: &t.W8A8Config, W4A16: &t.W4A16Config}[want] = n
		case "split16", "split8", "split4":
			if n < 0 || n > 64 {
				return t, fmt.Errorf("matmul tuning %q: %s=%d outside 0..64", s, k, n)
			}
			*map[string]*int{"split16": &t.W8A16Split, "split8": &t.W8A8Split, "split4": &t.W4A16Split}[k] = n
		case "blocks":
			if n < 0 || n > 32 {
				return t, fmt.Errorf("matmul tuning %q: blocks=%d outside 0..32", s, n)
			}
			t.BlocksPerSM = n
		default:
			return t, fmt.Errorf("matmul tuning %q: unknown key %q (w8a16, w8a8, w4a16, split16, split8, split4, blocks)", s, k)
		}
	}
	return t, nil
}

func (t Tuning) String() string {
	var p []string
	if t.W8A16Config >= 0 {
		p = append(p, fmt.Sprintf("w8a16=%d", t.W8A16Config))
	}
	if t.W8A8Config >= 0 {
		p = append(p, fmt.Sprintf("w8a8=%d", t.W8A8Config))
	}
	if t.W8A16Split > 0 {
		p = append(p, fmt.Sprintf("split16=%d", t.W8A16Split))
	}
	if t.W8A8Split > 0 {
		p = append(p, fmt.Sprintf("split8=%d", t.W8A8Split))
	}
	if t.BlocksPerSM > 0 {
		p = append(p, fmt.Sprintf("blocks=%d", t.BlocksPerSM))
	}
	if t.W4A16Config >= 0 {
		p = append(p, fmt.Sprintf("w4a16=%d", t.W4A16Config))
	}
	if t.W4A16Split > 0 {
		p = append(p, fmt.Sprintf("split4=%d", t.W4A16Split))
	}
	return strings.Join(p, ",")
}

func table() string {
	var s []string
	for i := range Configs {
		s = append(s, Name(i))
	}
	return strings.Join(s, " ")
}

// Plan is how one v2 matmul launches.
type Plan struct {
	Config   int
	Split    int
	RowsFast bool // consecutive blocks walk the row tiles of one weight tile
}

// Policy picks plans for a device of SMs multiprocessors.
type Policy struct {
	SMs    int // 0: 132 (H100/H200 SXM)
	Tuning Tuning
}

// SupportedW4 says whether a W4A16 kernel takes a weight of k inputs in mode affine
// (Q4_K-derived: whole 256-k super-blocks) or not (whole 32-k groups), with an
// activation row stride of ldX 16-bit elements.
func SupportedW4(k, ldX int, affine bool) bool {
	g := 32
	if affine {
		g = 256
	}
	return k > 0 && k%g == 0 && Supported(k, ldX, 2)
}

// Supported says whether a v2 kernel takes k and an activation row stride of ldX
// elements of elemBytes each (the addresses themselves must be 16-byte aligned, which
// every backend allocation and row view of one is when the strides are): k % 16 == 0
// and 16-byte row starts.
func Supported(k, ldX, elemBytes int) bool { return k > 0 && k%16 == 0 && (ldX*elemBytes)%16 == 0 }

// W8A16Split is the number of k slices of a [nw][k] weight in W8A16 products: a
// function of the weight's shape and the device only, never of the rows of a call, so
// a row's result does not depend on its batch (see matmul2.cuh). It aims at BlocksPerSM
// blocks per SM for the decode configuration's 128-row column tiles, with slices of at
// least 512 k, at most 16 of them.
func (p Policy) W8A16Split(nw, k int) int {
	if p.Tuning.W8A16Split > 0 {
		return min(p.Tuning.W8A16Split, max(1, k/16))
	}
	return p.shapeSplit(nw, k)
}

// W4A16Split is W8A16Split for W4A16 weights (the same rule: the weight's shape only;
// slices of whole 32-k groups, SliceOf).
func (p Policy) W4A16Split(nw, k int) int {
	if p.Tuning.W4A16Split > 0 {
		return min(p.Tuning.W4A16Split, max(1, k/32))
	}
	return p.shapeSplit(nw, k)
}

func (p Policy) shapeSplit(nw, k int) int {
	ct := (nw + 127) / 128
	target := p.blocks() * p.sms()
	s := (target + ct/2) / ct
	return max(1, min(s, 16, k/512))
}

func (p Policy) sms() int {
	if p.SMs > 0 {
		return p.SMs
	}
	return 132
}

func (p Policy) blocks() int {
	if p.Tuning.BlocksPerSM > 0 {
		return p.Tuning.BlocksPerSM
	}
	return 2
}

// ConfigFor is the configuration a call of n rows runs with (Marlin's idea: the tile
// follows the rows, so one weight pass serves them all up to 64 rows).
func (p Policy) ConfigFor(kind Kind, n int) int {
	if kind == W4A16 {
		if p.Tuning.W4A16Config >= 0 {
			return p.Tuning.W4A16Config
		}
		switch {
		case n <= 16:
			return 10
		case n <= 32:
			return 12
		}
		return 13
	}
	if kind == W8A16 {
		if p.Tuning.W8A16Config >= 0 {
			return p.Tuning.W8A16Config
		}
		switch {
		case n <= 16:
			return 0
		case n <= 32:
			return 3
		case n <= 64:
			return 4
		}
		return 5
	}
	if p.Tuning.W8A8Config >= 0 {
		return p.Tuning.W8A8Config
	}
	switch {
	case n <= 16:
		return 8
	case n <= 64:
		return 9
	}
	return 6
}

// Plan picks the configuration and split of a product of n rows with a weight whose
// output has nOut columns (2·nOut weight rows with SiLU-GLU) and k inputs.
func (p Policy) Plan(kind Kind, n, nOut, k int, epi Epilogue) Plan {
	cfg := p.ConfigFor(kind, n)
	rt, ct := Tiles(cfg, n, nOut, epi)
	pl := Plan{Config: cfg, Split: 1, RowsFast: rt > 1}
	nw := nOut
	if epi == EpiSiLUGLU {
		nw = 2 * nOut
	}
	switch kind {
	case W8A16:
		pl.Split = p.W8A16Split(nw, k)
		return pl
	case W4A16:
		pl.Split = p.W4A16Split(nw, k)
		return pl
	}
	// W8A8 sums int32 exactly: the split may follow the call.
	if p.Tuning.W8A8Split > 0 {
		pl.Split = min(p.Tuning.W8A8Split, max(1, k/16))
		return pl
	}
	if blocks, target := rt*ct, p.blocks()*p.sms(); blocks < target {
		pl.Split = max(1, min((target+blocks-1)/blocks, 16, k/256))
	}
	return pl
}
