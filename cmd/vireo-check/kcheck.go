package main

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"unsafe"

	"github.com/vireo-ai/vireo/cgo"
	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/backendtest"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/half"
	"github.com/vireo-ai/vireo/runtime/sampling"
)

// The kernel benchmarks' output checks: after timing, each benchmark's last output is
// compared with a CPU computation from the same device inputs (downloaded) on a few
// sampled rows, under backendtest's tolerance for the op in f16 (nmse). A benchmark
// that runs fast but wrong fails here instead of reporting a meaningless number.

// fromDev copies bytes from device memory (whose producing stream was synchronized).
func fromDev(p unsafe.Pointer, bytes int) ([]byte, error) {
	b := make([]byte, bytes)
	if bytes == 0 {
		return b, nil
	}
	return b, cgo.MemcpyD2H(unsafe.Pointer(&b[0]), p, bytes, cgo.Stream{})
}

func f16s(p unsafe.Pointer, n int) ([]float32, error) {
	b, err := fromDev(p, 2*n)
	if err != nil {
		return nil, err
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = half.F16ToF32(uint16(b[2*i]) | uint16(b[2*i+1])<<8)
	}
	return out, nil
}

func f32s(p unsafe.Pointer, n int) ([]float32, error) {
	b, err := fromDev(p, 4*n)
	if err != nil {
		return nil, err
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n), nil
}

func i8s(p unsafe.Pointer, n int) ([]int8, error) {
	b, err := fromDev(p, n)
	if err != nil {
		return nil, err
	}
	return unsafe.Slice((*int8)(unsafe.Pointer(&b[0])), n), nil
}

// sampleRows are the rows a check recomputes: first, middle, last (distinct).
func sampleRows(n int) []int {
	rows := []int{0}
	for _, r := range []int{n / 2, n - 1} {
		if r > rows[len(rows)-1] {
			rows = append(rows, r)
		}
	}
	return rows
}

// verdict sets the bench's check from the sampled want/got values.
func verdict(b *bench, op string, want, got []float32, what string) error {
	b.NMSE = backendtest.NMSE(want, got)
	tol := backendtest.Tolerance(op, backend.F16)
	if b.NMSE <= tol {
		b.Check = "pass"
		return nil
	}
	b.Check = "fail"
	worst, at := 0.0, 0
	for i := range want {
		if d := math.Abs(float64(want[i]) - float64(got[i])); d > worst || d != d {
			worst, at = d, i
		}
	}
	b.Detail = fmt.Sprintf("%s: nmse %.3g > %.3g; worst |diff| %.3g at sample %d (want %g, got %g)", what, b.NMSE, tol, worst, at, want[at], got[at])
	return nil
}

// parallel runs f(j) for j in [0, n) over the host's cores.
func parallel(n int, f func(j int)) {
	w := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for t := 0; t < w; t++ {
		wg.Add(1)
		go func(t int) {
			defer wg.Done()
			for j := t; j < n; j += w {
				f(j)
			}
		}(t)
	}
	wg.Wait()
}

// checkMatMul recomputes sampled rows of out [n][o] = x·Wᵀ (× scales).
func checkMatMul(b *bench, kind string, n, o, k int, out, x, xq, xs, w, scale unsafe.Pointer) error {
	rows := sampleRows(n)
	got, err := f16s(out, n*o)
	if err != nil {
		return err
	}
	var wf []float32
	var wq []int8
	var sc []float32
	if kind == "f16" {
		if wf, err = f16s(w, o*k); err != nil {
			return err
		}
	} else {
		if wq, err = i8s(w, o*k); err != nil {
			return err
		}
		if sc, err = f32s(scale, o); err != nil {
			return err
		}
	}
	xrow := make([][]float32, len(rows))
	var xScale []float32
	var xAll []float32
	var xqAll []int8
	if kind == "w8a8" {
		if xqAll, err = i8s(xq, n*k); err != nil {
			return err
		}
		if xScale, err = f32s(xs, n); err != nil {
			return err
		}
	} else if xAll, err = f16s(x, n*k); err != nil {
		return err
	}
	for i, r := range rows {
		xrow[i] = make([]float32, k)
		for kk := 0; kk < k; kk++ {
			if kind == "w8a8" {
				xrow[i][kk] = float32(xqAll[r*k+kk])
			} else {
				xrow[i][kk] = xAll[r*k+kk]
			}
		}
	}
	want := make([]float32, len(rows)*o)
	parallel(o, func(j int) {
		for i, r := range rows {
			var acc float64
			for kk := 0; kk < k; kk++ {
				wv := float64(0)
				if wf != nil {
					wv = float64(wf[j*k+kk])
				} else {
					wv = float64(wq[j*k+kk])
				}
				acc += float64(xrow[i][kk]) * wv
			}
			if sc != nil {
				acc *= float64(sc[j])
			}
			if kind == "w8a8" {
				acc *= float64(xScale[r])
			}
			want[i*o+j] = float32(acc)
		}
	})
	g := make([]float32, 0, len(want))
	for _, r := range rows {
		g = append(g, got[r*o:(r+1)*o]...)
	}
	return verdict(b, backendtest.OpMatMul, want, g, fmt.Sprintf("rows %v", rows))
}

type attnShape struct {
	H, KH, HD, BS, rows, blocks int
	seqs, rowSeq, tables        []int32
}

// checkAttention recomputes the first and last query rows of a paged attention.
func checkAttention(b *bench, a attnShape, q, kc, vc, out unsafe.Pointer) error {
	cols := a.H * a.HD
	got, err := f16s(out, a.rows*cols)
	if err != nil {
		return err
	}
	qh, err := f16s(q, a.rows*cols)
	if err != nil {
		return err
	}
	cache := a.blocks * a.KH * a.BS * a.HD
	kh, err := f16s(kc, cache)
	if err != nil {
		return err
	}
	vh, err := f16s(vc, cache)
	if err != nil {
		return err
	}
	rows := sampleRows(a.rows)
	want := make([]float32, len(rows)*cols)
	g := make([]float32, 0, len(want))
	scale := 1 / math.Sqrt(float64(a.HD))
	for i, r := range rows {
		s := a.rowSeq[r]
		q0, pos, off := a.seqs[4*s], a.seqs[4*s+2], a.seqs[4*s+3]
		ctx := int(pos) + (r - int(q0)) + 1
		parallel(a.H, func(h int) {
			kvh := h / (a.H / a.KH)
			sc := make([]float64, ctx)
			m := math.Inf(-1)
			for p := 0; p < ctx; p++ {
				blk := int(a.tables[int(off)+p/a.BS])
				base := ((blk*a.KH+kvh)*a.BS + p%a.BS) * a.HD
				var d float64
				for e := 0; e < a.HD; e++ {
					d += float64(qh[r*cols+h*a.HD+e]) * float64(kh[base+e])
				}
				sc[p] = d * scale
				m = math.Max(m, sc[p])
			}
			var l float64
			acc := make([]float64, a.HD)
			for p := 0; p < ctx; p++ {
				e := math.Exp(sc[p] - m)
				l += e
				blk := int(a.tables[int(off)+p/a.BS])
				base := ((blk*a.KH+kvh)*a.BS + p%a.BS) * a.HD
				for d := 0; d < a.HD; d++ {
					acc[d] += e * float64(vh[base+d])
				}
			}
			for d := 0; d < a.HD; d++ {
				want[i*cols+h*a.HD+d] = float32(acc[d] / l)
			}
		})
		g = append(g, got[r*cols:(r+1)*cols]...)
	}
	return verdict(b, backendtest.OpAttention, want, g, fmt.Sprintf("rows %v", rows))
}

// checkRMSNorm recomputes sampled rows of out = x / rms(x) * w.
func checkRMSNorm(b *bench, n, dim int, eps float32, x, w, out unsafe.Pointer) error {
	xs, err := f16s(x, n*dim)
	if err != nil {
		return err
	}
	ws, err := f16s(w, dim)
	if err != nil {
		return err
	}
	got, err := f16s(out, n*dim)
	if err != nil {
		return err
	}
	rows := sampleRows(n)
	var want, g []float32
	for _, r := range rows {
		var ss float64
		for _, v := range xs[r*dim : (r+1)*dim] {
			ss += float64(v) * float64(v)
		}
		inv := 1 / math.Sqrt(ss/float64(dim)+float64(eps))
		for k := 0; k < dim; k++ {
			want = append(want, float32(float64(xs[r*dim+k])*inv*float64(ws[k])))
		}
		g = append(g, got[r*dim:(r+1)*dim]...)
	}
	return verdict(b, backendtest.OpRMSNorm, want, g, fmt.Sprintf("rows %v", rows))
}

// checkRMSNormQuant requires the fused RMSNormQuant's int8 rows and scales (q, qs) to
// equal those of RMSNorm then QuantizeRows (q2, qs2) bit for bit, and recomputes sampled
// rows on the CPU: the normalized row (float64, rounded to f16 as the kernel stores it)
// quantized as cpu.QuantizeRow does, compared under rmsnorm_quant's f16 tolerance.
func checkRMSNormQuant(b *bench, n, dim int, eps float32, x, w, q, qs, q2, qs2 unsafe.Pointer) error {
	got, err := i8s(q, n*dim)
	if err != nil {
		return err
	}
	two, err := i8s(q2, n*dim)
	if err != nil {
		return err
	}
	sc, err := f32s(qs, n)
	if err != nil {
		return err
	}
	sc2, err := f32s(qs2, n)
	if err != nil {
		return err
	}
	for i := range got {
		if got[i] != two[i] || (i < n && math.Float32bits(sc[i]) != math.Float32bits(sc2[i])) {
			b.Check = "fail"
			b.Detail = fmt.Sprintf("fused and two-step outputs differ at element %d (q %d vs %d)", i, got[i], two[i])
			return nil
		}
	}
	xs, err := f16s(x, n*dim)
	if err != nil {
		return err
	}
	ws, err := f16s(w, dim)
	if err != nil {
		return err
	}
	rows := sampleRows(n)
	var want, g []float32
	y, qr := make([]float32, dim), make([]int8, dim)
	for _, r := range rows {
		var ss float64
		for _, v := range xs[r*dim : (r+1)*dim] {
			ss += float64(v) * float64(v)
		}
		inv := 1 / math.Sqrt(ss/float64(dim)+float64(eps))
		for k := range y {
			y[k] = half.F16ToF32(half.F32ToF16(float32(float64(xs[r*dim+k]) * inv * float64(ws[k]))))
		}
		s := cpu.QuantizeRow(qr, y)
		for k := range qr {
			want = append(want, float32(qr[k]))
			g = append(g, float32(got[r*dim+k]))
		}
		want, g = append(want, s), append(g, sc[r])
	}
	return verdict(b, backendtest.OpRMSNormQuant, want, g, fmt.Sprintf("rows %v", rows))
}

// checkSample: every row's token must be runtime/sampling's for the same logits and
// parameters; v1 may give a row to the host (-1), v2 never.
func checkSample(b *bench, rows, V int, dt cgo.DType, logits, ids unsafe.Pointer, params []cgo.SamplingParams, v2 bool) error {
	var lg []float32
	var err error
	if dt == cgo.F16 {
		lg, err = f16s(logits, rows*V)
	} else {
		lg, err = f32s(logits, rows*V)
	}
	if err != nil {
		return err
	}
	ib, err := fromDev(ids, 4*rows)
	if err != nil {
		return err
	}
	got := unsafe.Slice((*int32)(unsafe.Pointer(&ib[0])), rows)
	var smp sampling.Sampler
	bad, host := 0, 0
	for r := 0; r < rows; r++ {
		p := params[r]
		sp := sampling.Params{Temperature: p.Temperature, TopK: int(p.TopK), TopP: p.TopP, MinP: p.MinP,
			RepetitionPenalty: p.RepetitionPenalty, Seed: p.Seed}
		want := int32(smp.Sample(lg[r*V:(r+1)*V], &sp, p.TokenIndex, nil))
		switch {
		case got[r] == -1 && !v2:
			host++
		case got[r] != want:
			bad++
			if b.Detail == "" {
				b.Detail = fmt.Sprintf("row %d: token %d, runtime/sampling %d", r, got[r], want)
			}
		}
	}
	b.Check = "pass"
	if bad > 0 {
		b.Check = "fail"
	}
	if host > 0 {
		b.Detail += fmt.Sprintf(" (%d of %d rows given to the host)", host, rows)
	}
	return nil
}
