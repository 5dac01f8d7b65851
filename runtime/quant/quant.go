// Package quant turns float weights into the int8 forms the backends run: symmetric
// per-row int8 with one fp32 scale per output row.
package quant

import (
	"math"
	"runtime"
	"sync"
)

// QuantizeRows quantizes w [rows][cols] to int8 with one scale per row:
// scale = max|row| / 127, q = round(w / scale) (half to even) clamped to ±127.
// An all-zero row gets scale 0 and zero values.
func QuantizeRows(w []float32, rows, cols int) (q []int8, scales []float32) {
	q = make([]int8, rows*cols)
	scales = make([]float32, rows)
	ParallelRows(rows, rows*cols, func(r0, r1 int) {
		for r := r0; r < r1; r++ {
			row := w[r*cols : (r+1)*cols]
			var amax float32
			for _, v := range row {
				amax = max(amax, float32(math.Abs(float64(v))))
			}
			if amax == 0 {
				continue
			}
			scale := amax / 127
			scales[r] = scale
			inv := 1 / float64(scale)
			dst := q[r*cols : (r+1)*cols]
			for k, v := range row {
				x := math.RoundToEven(float64(v) * inv)
				dst[k] = int8(max(-127, min(127, x)))
			}
		}
	})
	return q, scales
}

// Dequantize returns scale[r]*q[r][c] as floats.
func Dequantize(q []int8, scales []float32, rows, cols int) []float32 {
	out := make([]float32, rows*cols)
	for r := 0; r < rows; r++ {
		s := scales[r]
		for c := 0; c < cols; c++ {
			out[r*cols+c] = float32(q[r*cols+c]) * s
		}
	}
	return out
}

// ParallelRows runs fn over [0, n) split across the cores (one contiguous range per
// core) when work, the op's element count, is at least 1<<20; on the caller otherwise.
func ParallelRows(n, work int, fn func(i0, i1 int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers < 2 || work < 1<<20 {
		fn(0, n)
		return
	}
	per := (n + workers - 1) / workers
	var wg sync.WaitGroup
	for i0 := 0; i0 < n; i0 += per {
		wg.Go(func() { fn(i0, min(n, i0+per)) })
	}
	wg.Wait()
}
