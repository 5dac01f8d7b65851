package quant

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestQuantizeRowsRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	rows, cols := 7, 13
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(rng.NormFloat64())
	}
	for c := 0; c < cols; c++ { // an all-zero row
		w[3*cols+c] = 0
	}
	q, s := QuantizeRows(w, rows, cols)
	require.Equal(t, float32(0), s[3])
	back := Dequantize(q, s, rows, cols)
	for r := 0; r < rows; r++ {
		var amax float64
		hit127 := false
		for c := 0; c < cols; c++ {
			amax = math.Max(amax, math.Abs(float64(w[r*cols+c])))
			if q[r*cols+c] == 127 || q[r*cols+c] == -127 {
				hit127 = true
			}
		}
		require.InDelta(t, amax/127, float64(s[r]), 1e-7)
		if amax > 0 {
			require.True(t, hit127, "row %d: the largest element must map to ±127", r)
		}
		for c := 0; c < cols; c++ {
			require.InDelta(t, w[r*cols+c], back[r*cols+c], float64(s[r])/2+1e-7, "row %d col %d", r, c)
		}
	}
}

func TestQuantizeRoundsHalfToEven(t *testing.T) {
	// Row max 127 gives scale 1: 2.5 → 2, 3.5 → 4, -2.5 → -2.
	q, s := QuantizeRows([]float32{127, 2.5, 3.5, -2.5}, 1, 4)
	require.Equal(t, float32(1), s[0])
	require.Equal(t, []int8{127, 2, 4, -2}, q)
}
