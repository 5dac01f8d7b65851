package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/vireo-ai/vireo/runtime/backend"
)

// TestW8A8Prompt: with Options.W8A8, a prompt MatMul with int8 weights equals the plain
// product of activations rounded per row to the int8 grid, computed here independently
// (q = round-half-even(x·127/amax), clamped, times amax/127), generated rows are not
// rounded, each row's result does not depend on the other rows of the call, and
// without the option the flag changes nothing. Low-rank int8 factors and the SiLU-GLU
// epilogue carry the role to their inner products.
func TestW8A8Prompt(t *testing.T) {
	const n, in, out = 7, 96, 13
	r := rand.New(rand.NewPCG(8, 8))
	x := make([]float32, n*in)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	x[3*in+5] = 0 // and a zero row
	for k := range in {
		x[4*in+k] = 0
	}
	q := make([]int8, out*in)
	for i := range q {
		q[i] = int8(r.IntN(255) - 127)
	}
	sc := make([]float32, out)
	for i := range sc {
		sc[i] = 0.01 + r.Float32()/50
	}
	// The rounding, written out independently of quantizeRows.
	xq := make([]float32, len(x))
	for i := range n {
		row := x[i*in : (i+1)*in]
		amax := 0.0
		for _, v := range row {
			amax = math.Max(amax, math.Abs(float64(v)))
		}
		s := float32(1)
		if amax > 0 {
			s = float32(amax) / 127
		}
		for k, v := range row {
			xq[i*in+k] = float32(math.Max(-127, math.Min(127, math.RoundToEven(float64(v/s))))) * s
		}
	}
	mm := func(be *Backend, xs []float32, rows int, epi backend.Epilogue) []float32 {
		t.Helper()
		w, err := be.LoadWeight(&backend.HostWeight{Name: "w", Out: out, In: in, I8: q, Scales: sc})
		if err != nil {
			t.Fatal(err)
		}
		o := make([]float32, rows*out)
		if err := be.MatMul(nil, F32(o, rows, out), F32(xs, rows, in), w, epi); err != nil {
			t.Fatal(err)
		}
		return o
	}
	on, off := New(Options{W8A8: true, Threads: 1}), New(Options{Threads: 1})
	eq := func(what string, want, got []float32) {
		t.Helper()
		for i := range want {
			if math.Float32bits(want[i]) != math.Float32bits(got[i]) {
				t.Fatalf("%s: element %d: %g, want %g", what, i, got[i], want[i])
			}
		}
	}
	prompt := mm(on, x, n, backend.Epilogue{Prompt: true})
	eq("prompt rows = the product of the rounded rows", mm(on, xq, n, backend.Epilogue{}), prompt)
	eq("generated rows are not rounded", mm(off, x, n, backend.Epilogue{}), mm(on, x, n, backend.Epilogue{}))
	eq("the role is ignored without W8A8", mm(off, x, n, backend.Epilogue{}), mm(off, x, n, backend.Epilogue{Prompt: true}))
	for i := range n {
		eq("a prompt row alone", prompt[i*out:(i+1)*out], mm(on, x[i*in:(i+1)*in], 1, backend.Epilogue{Prompt: true}))
	}
	diff := 0
	for i, v := range mm(on, x, n, backend.Epilogue{}) {
		if v != prompt[i] {
			diff++
		}
	}
	if diff < n*out/2 {
		t.Errorf("prompt and generated rows differ in %d of %d outputs: the rounding did not happen", diff, n*out)
	}
	// SiLU-GLU (13 rows is odd: use 12) and a low-rank pair pass the role on.
	w, err := on.LoadWeight(&backend.HostWeight{Name: "gu", Out: 12, In: in, I8: q[:12*in], Scales: sc[:12]})
	if err != nil {
		t.Fatal(err)
	}
	glu := func(xs []float32, prompt bool) []float32 {
		o := make([]float32, n*6)
		if err := on.MatMul(nil, F32(o, n, 6), F32(xs, n, in), w, backend.Epilogue{SiLUGLU: true, Prompt: prompt}); err != nil {
			t.Fatal(err)
		}
		return o
	}
	eq("silu-glu prompt rows", glu(xq, false), glu(x, true))
	lr, err := on.LoadWeight(&backend.HostWeight{Name: "lr", Out: out, In: in, Kind: backend.LowRank,
		A: &backend.HostWeight{Name: "a", Out: 12, In: in, I8: q[:12*in], Scales: sc[:12]},
		B: &backend.HostWeight{Name: "b", Out: out, In: 12, I8: q[:out*12], Scales: sc}})
	if err != nil {
		t.Fatal(err)
	}
	low := func(xs []float32, prompt bool) []float32 {
		o := make([]float32, n*out)
		if err := on.MatMul(nil, F32(o, n, out), F32(xs, n, in), lr, backend.Epilogue{Prompt: prompt}); err != nil {
			t.Fatal(err)
		}
		return o
	}
	if got, plain := low(x, true), low(x, false); slicesEqualBits(got, plain) {
		t.Error("low-rank prompt rows: no rounding")
	}
}

func slicesEqualBits(a, b []float32) bool {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// TestRMSNormQuant: the fused op equals RMSNorm followed by the int8 rounding written
// out here (scale = amax/127, round half to even, ±127), a zero row gets scale 1 and
// zeros, and wrong operands are errors.
func TestRMSNormQuant(t *testing.T) {
	const n, d = 5, 37
	r := rand.New(rand.NewPCG(9, 9))
	x := make([]float32, n*d)
	for i := range x {
		x[i] = float32(r.NormFloat64()) * float32(1+i/d)
	}
	clear(x[2*d : 3*d])
	w := make([]float32, d)
	for i := range w {
		w[i] = 0.5 + r.Float32()
	}
	c := New(Options{Threads: 1})
	y := make([]float32, n*d)
	if err := c.RMSNorm(nil, F32(y, n, d), F32(x, n, d), F32(w, 1, d), 1e-5); err != nil {
		t.Fatal(err)
	}
	qt, err := c.Alloc(backend.I8, n, d)
	if err != nil {
		t.Fatal(err)
	}
	sc := make([]float32, n)
	if err := c.RMSNormQuant(nil, qt, F32(sc, 1, n), F32(x, n, d), F32(w, 1, d), 1e-5); err != nil {
		t.Fatal(err)
	}
	got := make([]int8, n*d)
	if err := c.Download(backend.Bytes(got), backend.I8, qt); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		amax := 0.0
		for _, v := range y[i*d : (i+1)*d] {
			amax = math.Max(amax, math.Abs(float64(v)))
		}
		s := float32(1)
		if amax > 0 {
			s = float32(amax) / 127
		}
		if sc[i] != s {
			t.Fatalf("row %d: scale %g, want %g", i, sc[i], s)
		}
		for k, v := range y[i*d : (i+1)*d] {
			if want := int8(math.Max(-127, math.Min(127, math.RoundToEven(float64(v/s))))); got[i*d+k] != want {
				t.Fatalf("row %d col %d: q %d, want %d", i, k, got[i*d+k], want)
			}
		}
	}
	if sc[2] != 1 {
		t.Errorf("zero row: scale %g, want 1", sc[2])
	}
	if err := c.RMSNormQuant(nil, F32(make([]float32, n*d), n, d), F32(sc, 1, n), F32(x, n, d), F32(w, 1, d), 1e-5); err == nil {
		t.Error("f32 q accepted")
	}
	if err := c.RMSNormQuant(nil, qt, F32(sc[:n-1], 1, n-1), F32(x, n, d), F32(w, 1, d), 1e-5); err == nil {
		t.Error("too few scales accepted")
	}
}
