package backendtest

import (
	"math"

	"github.com/vireo-ai/vireo/runtime/backend"
)

// Kerneler is an optional ability of the backend under test: which kernel a matmul of
// n rows of x [n][in] into out [n][out] with a weight stored as w and epilogue epi
// runs, and the output tile one block of it computes (rows × cols). Run records the name in each matmul result
// (so a report shows which paths were checked) and folds a failing case's error map
// by that tile.
type Kerneler interface {
	MatMulKernel(n, in, out int, w backend.DType, epi backend.Epilogue) (name string, tileRows, tileCols int)
}

// Default tile of the error map when the backend names none: the m16n8 fragment of an
// mma.sync, the smallest layout a device kernel's bugs follow.
const defaultTileRows, defaultTileCols = 16, 8

// Most tile rows and columns an error map draws (a larger tile is folded modulo these).
const maxTileMap = 64

// Diag is what a failing case records about one output, so that a mismatch can be
// debugged from the report alone: where the worst errors are, how many elements are
// over tolerance, the error map by position inside the kernel's output tile and by
// row and column, and the first bad elements with their expected and computed values.
//
// An element is over tolerance when |got − want| exceeds ElemTol = 4·√tol·rms(want)
// (an error that size on every element would give 16 times the allowed nmse; with a
// zero tolerance, any difference), or when got is NaN or ±Inf.
type Diag struct {
	Output   string `json:"output"`
	Rows     int    `json:"rows"`
	Cols     int    `json:"cols"`
	Kernel   string `json:"kernel,omitempty"`
	TileRows int    `json:"tile_rows"`
	TileCols int    `json:"tile_cols"`

	MaxAbs    Num `json:"max_abs"`
	MaxAbsRow int `json:"max_abs_row"`
	MaxAbsCol int `json:"max_abs_col"`
	MaxRel    Num `json:"max_rel"` // over elements with |want| > 1e-6·rms(want)
	MaxRelRow int `json:"max_rel_row"`
	MaxRelCol int `json:"max_rel_col"`
	ElemTol   Num `json:"elem_tol"`
	Over      int `json:"over_tolerance"`
	NonFinite int `json:"non_finite"`

	// TileMap has one string per row of the tile (at most 64 of 64): the share of
	// bad elements at that position of every tile, '.' none, '1'..'9' tenths, '#' all.
	TileMap []string `json:"tile_map"`
	// BadRows and BadCols are the runs of consecutive rows (columns) holding bad
	// elements, with their count (at most 32 runs each; Truncated says more exist).
	BadRows   []Span `json:"bad_rows"`
	BadCols   []Span `json:"bad_cols"`
	Truncated bool   `json:"spans_truncated,omitempty"`
	First     []Bad  `json:"first_bad"` // the first 8, in row-major order
}

// Span is a run of rows or columns [First, Last] with Bad bad elements in all.
type Span struct {
	First int `json:"first"`
	Last  int `json:"last"`
	Bad   int `json:"bad"`
}

// Bad is one element over tolerance.
type Bad struct {
	Row  int `json:"row"`
	Col  int `json:"col"`
	Want Num `json:"want"`
	Got  Num `json:"got"`
}

const maxSpans = 32

// diagnose compares got with want ([rows][cols], row-major) under the nmse tolerance
// tol and returns the diagnostics, or nil when no element is over tolerance.
func diagnose(name string, want, got []float32, cols int, tol float64, kernel string, tileRows, tileCols int) *Diag {
	if cols <= 0 || len(want) != len(got) || len(want) == 0 {
		return nil
	}
	if tileRows <= 0 || tileCols <= 0 {
		tileRows, tileCols = defaultTileRows, defaultTileCols
	}
	rows := len(want) / cols
	var ss float64
	for _, w := range want {
		ss += float64(w) * float64(w)
	}
	rms := math.Sqrt(ss / float64(len(want)))
	d := &Diag{Output: name, Rows: rows, Cols: cols, Kernel: kernel, TileRows: tileRows, TileCols: tileCols,
		ElemTol: Num(4 * math.Sqrt(tol) * rms), MaxAbsRow: -1, MaxAbsCol: -1, MaxRelRow: -1, MaxRelCol: -1}
	tr, tc := min(tileRows, maxTileMap), min(tileCols, maxTileMap)
	tileBad := make([]int, tr*tc)
	tileAll := make([]int, tr*tc)
	rowBad := make([]int, rows)
	colBad := make([]int, cols)
	for i, w := range want {
		r, c := i/cols, i%cols
		t := (r%tileRows%tr)*tc + c%tileCols%tc
		tileAll[t]++
		g := got[i]
		diff := math.Abs(float64(g) - float64(w))
		finite := !math.IsNaN(float64(g)) && !math.IsInf(float64(g), 0)
		if !finite {
			d.NonFinite++
			diff = math.Inf(1)
		}
		if diff > float64(d.MaxAbs) || (d.MaxAbsRow < 0 && diff > 0) {
			d.MaxAbs, d.MaxAbsRow, d.MaxAbsCol = Num(diff), r, c
		}
		if aw := math.Abs(float64(w)); aw > 1e-6*rms {
			if rel := diff / aw; rel > float64(d.MaxRel) {
				d.MaxRel, d.MaxRelRow, d.MaxRelCol = Num(rel), r, c
			}
		}
		if finite && diff <= float64(d.ElemTol) {
			continue
		}
		d.Over++
		tileBad[t]++
		rowBad[r]++
		colBad[c]++
		if len(d.First) < 8 {
			d.First = append(d.First, Bad{Row: r, Col: c, Want: Num(w), Got: Num(g)})
		}
	}
	if d.Over == 0 {
		return nil
	}
	for r := 0; r < tr; r++ {
		line := make([]byte, tc)
		for c := range line {
			bad, all := tileBad[r*tc+c], tileAll[r*tc+c]
			switch {
			case bad == 0:
				line[c] = '.'
			case bad == all:
				line[c] = '#'
			default:
				line[c] = byte('1' + min(8, 10*bad/all))
			}
		}
		d.TileMap = append(d.TileMap, string(line))
	}
	var t1, t2 bool
	d.BadRows, t1 = spans(rowBad)
	d.BadCols, t2 = spans(colBad)
	d.Truncated = t1 || t2
	return d
}

// spans returns the runs of consecutive indices with a non-zero count.
func spans(count []int) ([]Span, bool) {
	var out []Span
	for i := 0; i < len(count); i++ {
		if count[i] == 0 {
			continue
		}
		if len(out) == maxSpans {
			return out, true
		}
		s := Span{First: i}
		for ; i < len(count) && count[i] > 0; i++ {
			s.Bad += count[i]
		}
		s.Last = i - 1
		out = append(out, s)
	}
	return out, false
}
