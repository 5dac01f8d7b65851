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
	parallelRows(rows, cols, func(r0, r1 int) {
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

func parallelRows(rows, cols int, fn func(r0, r1 int)) {
	workers := runtime.GOMAXPROCS(0)
	if rows*cols < 1<<20 || workers < 2 {
		fn(0, rows)
		return
	}
	per := (rows + workers - 1) / workers
	var wg sync.WaitGroup
	for r0 := 0; r0 < rows; r0 += per {
		wg.Add(1)
		go func(r0 int) {
			defer wg.Done()
			fn(r0, min(r0+per, rows))
		}(r0)
	}
	wg.Wait()
}
