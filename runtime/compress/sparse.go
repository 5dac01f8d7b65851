package compress

import (
	"fmt"
	"math"

	"github.com/vireo-ai/vireo/runtime/backend"
)

// Prune24 makes w [out][in] 2:4 sparse: in every group of 4 consecutive inputs of a
// row it keeps the two weights of largest score and returns them in the 2:4 layout
// (backend/kinds.go). The score is |W[j][k]| (magnitude pruning) when norms is nil, else
// |W[j][k]|·norms[k] with norms[k] = ‖X_k‖₂, the norm of input k over calibration
// tokens (Wanda: Sun et al., 2023, which compares weights within an output row, as the
// 2:4 groups do). Ties keep the lower column.
func Prune24(w []float32, out, in int, norms []float64) (values []float32, meta []byte, err error) {
	switch {
	case in%4 != 0:
		return nil, nil, fmt.Errorf("2:4: %d inputs are not groups of 4", in)
	case len(w) < out*in:
		return nil, nil, fmt.Errorf("2:4: %d values for [%d][%d]", len(w), out, in)
	case norms != nil && len(norms) != in:
		return nil, nil, fmt.Errorf("2:4: %d input norms for %d inputs", len(norms), in)
	}
	ms := backend.Sparse24MetaStride(in)
	values = make([]float32, out*in/2)
	meta = make([]byte, out*ms)
	for j := 0; j < out; j++ {
		row := w[j*in : (j+1)*in]
		for g := 0; g < in/4; g++ {
			var score [4]float64
			for i := range score {
				score[i] = math.Abs(float64(row[4*g+i]))
				if norms != nil {
					score[i] *= norms[4*g+i]
				}
				if math.IsNaN(score[i]) {
					return nil, nil, fmt.Errorf("2:4: row %d input %d: NaN weight or norm", j, 4*g+i)
				}
			}
			a, b := 0, 1 // the best two, a before b in rank
			if score[1] > score[0] {
				a, b = 1, 0
			}
			for i := 2; i < 4; i++ {
				switch {
				case score[i] > score[a]:
					a, b = i, a
				case score[i] > score[b]:
					b = i
				}
			}
			if a > b {
				a, b = b, a
			}
			values[j*in/2+2*g] = row[4*g+a]
			values[j*in/2+2*g+1] = row[4*g+b]
			meta[j*ms+g/2] |= backend.Sparse24Code(a, b) << (4 * (g % 2))
		}
	}
	return values, meta, nil
}
