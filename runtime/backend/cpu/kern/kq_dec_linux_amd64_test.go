package kern

import (
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/cpu"
)

// TestQ6KDecodeKernels: both AVX-512 Q6_K decode kernels, the GFNI one (registered where
// the CPU has GFNI) and the plain VNNI one (registered where it has not, so
// TestQKernelsAgree may not reach it here), match the portable code bit for bit, and
// read nothing past the row or the activations (both end at an inaccessible page).
func TestQ6KDecodeKernels(t *testing.T) {
	if qLevel() != qLevelVNNI {
		t.Skip("needs AVX-512 VNNI")
	}
	kernels := map[string]row1Func{"vnni": q6kRow1VNNI}
	if cpu.X86.HasAVX512GFNI {
		kernels["gfni"] = q6kRow1GFNI
	}
	f := QQ6_K
	r := rand.New(rand.NewPCG(21, 22))
	for _, nb := range []int{1, 2, 3, 5, 8, 22} {
		const rows = 5
		rb, n := nb*f.BlockBytes, nb*f.Block
		w := guarded(t, rows*rb)
		copy(w, randBlocks(r, f, rows, nb))
		act := guarded(t, f.ActBytes(n))
		f.Quantize(act, randActivations(r, n))
		for name, k := range kernels {
			for row := 0; row < rows; row++ {
				want := f.dot(w[row*rb:], nb, act)
				var got float32
				k(&got, &w[row*rb], nb, &act[0])
				require.Equal(t, math.Float32bits(want), math.Float32bits(got), "%s nb=%d row %d: %g vs %g", name, nb, row, got, want)
			}
		}
	}
}

func rows4Loop(k rows4Func) func(out []float32, w []byte, ldw, rows, nb int, act []byte) {
	return func(out []float32, w []byte, ldw, rows, nb int, act []byte) {
		for r := 0; r+4 <= rows; r += 4 {
			k((*[4]float32)(out[r:]), &w[r*ldw], ldw, nb, &act[0])
		}
	}
}

func row1Loop(k row1Func) func(out []float32, w []byte, ldw, rows, nb int, act []byte) {
	return func(out []float32, w []byte, ldw, rows, nb int, act []byte) {
		for r := 0; r < rows; r++ {
			k(&out[r], &w[r*ldw], nb, &act[0])
		}
	}
}

// BenchmarkQDecode measures the Q4_K and Q6_K decode kernels (one row per call, and the
// four-row kernels behind Rows4) on TinyLlama's FFN shape (rows of 2048 values) with the weights in L2 ("l2": 256 rows, reused: the kernel's
// compute bound) and streamed from DRAM ("dram": 5632-row matrices walked through a
// 512 MiB arena), on 1 and 2 goroutines splitting the rows. GB/s counts weight bytes.
// Variants of a format alternate under -count, so compare them within one run.
func BenchmarkQDecode(b *testing.B) {
	if qLevel() != qLevelVNNI {
		b.Skip("needs AVX-512 VNNI")
	}
	type variant struct {
		name string
		k    func(out []float32, w []byte, ldw, rows, nb int, act []byte)
	}
	q6 := []variant{{"vnni", row1Loop(q6kRow1VNNI)}}
	if cpu.X86.HasAVX512GFNI {
		q6 = append(q6, variant{"gfni", row1Loop(q6kRow1GFNI)})
	}
	const cols = 2048
	for _, tc := range []struct {
		f    *QFormat
		vars []variant
	}{
		{QQ4_K, []variant{{"vnni", row1Loop(q4kRow1VNNI)}, {"rows4", rows4Loop(q4kRows4VNNI)}}},
		{QQ6_K, q6},
	} {
		f := tc.f
		nb := cols / f.Block
		ldw := f.RowBytes(cols)
		act := make([]byte, f.ActBytes(cols))
		f.Quantize(act, randActivations(rand.New(rand.NewPCG(1, 1)), cols))
		arena := qArena(f, 5632, cols)
		for _, where := range []string{"l2", "dram"} {
			rows := 5632
			if where == "l2" {
				rows = 256
			}
			m := rows * ldw
			for _, thr := range []int{1, 2} {
				for _, v := range tc.vars {
					b.Run(f.Name+"/"+where+"/t"+string(rune('0'+thr))+"/"+v.name, func(b *testing.B) {
						out := make([]float32, rows)
						per := rows / thr
						off := 0
						for i := 0; i < b.N; i++ {
							if where == "dram" && off+m > len(arena) {
								off = 0
							}
							w := arena[off : off+m]
							var wg sync.WaitGroup
							for p := 0; p < thr; p++ {
								wg.Go(func() {
									v.k(out[p*per:], w[p*per*ldw:], ldw, per, nb, act)
								})
							}
							wg.Wait()
							if where == "dram" {
								off += m
							}
						}
						reportGBs(b, m)
					})
				}
			}
		}
	}
}
