package backendtest_test

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/backendtest"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/half"
)

// halfCPU stands in for a device backend with 16-bit tensors, so that the harness's
// f16/bf16 path runs without a GPU: it keeps f16/bf16 tensors as f32 storage holding
// values rounded to their dtype, computes in f32 on the CPU and rounds what it writes.
// Its error against the reference is therefore exactly one output rounding.
type halfCPU struct {
	*cpu.Backend
	kv backend.DType // the KV cache's dtype
	w  backend.DType // f32 weights are stored in this dtype
}

func isHalf(dt backend.DType) bool { return dt == backend.F16 || dt == backend.BF16 }

func asF32(t backend.Tensor) backend.Tensor {
	if isHalf(t.DType) {
		t.DType = backend.F32
	}
	return t
}

// roundOut rounds an op's output to its dtype in place.
func roundOut(t backend.Tensor) {
	if !isHalf(t.DType) {
		return
	}
	s := cpu.Float32s(asF32(t))
	for i, v := range s {
		s[i] = backendtest.Round(t.DType, v)
	}
}

func (h halfCPU) Name() string { return fmt.Sprintf("cpu-half(kv=%s,w=%s)", h.kv, h.w) }

func (h halfCPU) Alloc(dt backend.DType, rows, cols int) (backend.Tensor, error) {
	if !isHalf(dt) {
		return h.Backend.Alloc(dt, rows, cols)
	}
	t, err := h.Backend.Alloc(backend.F32, rows, cols)
	t.DType = dt
	return t, err
}

func (h halfCPU) Upload(dst backend.Tensor, src []byte, dt backend.DType) error {
	if !isHalf(dst.DType) {
		return h.Backend.Upload(dst, src, dt)
	}
	if dt != dst.DType || len(src) != 2*dst.Len() {
		return fmt.Errorf("upload to %s: %d bytes", dst, len(src))
	}
	f := make([]byte, 4*dst.Len())
	for i := 0; i < dst.Len(); i++ {
		u := binary.LittleEndian.Uint16(src[2*i:])
		v := half.BF16ToF32(u)
		if dst.DType == backend.F16 {
			v = half.F16ToF32(u)
		}
		binary.LittleEndian.PutUint32(f[4*i:], math.Float32bits(v))
	}
	return h.Backend.Upload(asF32(dst), f, backend.F32)
}

func (h halfCPU) Download(dst []byte, dt backend.DType, src backend.Tensor) error {
	if !isHalf(src.DType) {
		return h.Backend.Download(dst, dt, src)
	}
	if dt != src.DType || len(dst) != 2*src.Len() {
		return fmt.Errorf("download from %s: %d bytes", src, len(dst))
	}
	for i, v := range cpu.Float32s(asF32(src)) {
		u := half.F32ToBF16(v)
		if src.DType == backend.F16 {
			u = half.F32ToF16(v)
		}
		binary.LittleEndian.PutUint16(dst[2*i:], u)
	}
	return nil
}

func (h halfCPU) LoadWeight(hw *backend.HostWeight) (*backend.Weight, error) {
	if hw.F32 == nil || !isHalf(h.w) {
		return h.Backend.LoadWeight(hw)
	}
	r := *hw
	r.F32 = make([]float32, len(hw.F32))
	for i, v := range hw.F32 {
		r.F32[i] = backendtest.Round(h.w, v)
	}
	w, err := h.Backend.LoadWeight(&r)
	if err == nil {
		w.W.DType = h.w
	}
	return w, err
}

func f32Weight(w *backend.Weight) *backend.Weight {
	c := *w
	c.W = asF32(c.W)
	return &c
}

func (h halfCPU) AllocKV(layers, blocks, blockSize, kvHeads, headDim int) (*backend.KVCache, error) {
	kv, err := h.Backend.AllocKV(layers, blocks, blockSize, kvHeads, headDim)
	if err == nil && isHalf(h.kv) {
		for l := range kv.K {
			kv.K[l].DType, kv.V[l].DType = h.kv, h.kv
		}
	}
	return kv, err
}

func f32KV(kv *backend.KVCache) *backend.KVCache {
	c := *kv
	c.K, c.V = make([]backend.Tensor, len(kv.K)), make([]backend.Tensor, len(kv.V))
	for l := range kv.K {
		c.K[l], c.V[l] = asF32(kv.K[l]), asF32(kv.V[l])
	}
	return &c
}

func (h halfCPU) Embed(s backend.Stream, out backend.Tensor, table *backend.Weight, ids backend.Tensor) error {
	defer roundOut(out)
	return h.Backend.Embed(s, asF32(out), f32Weight(table), ids)
}

func (h halfCPU) RMSNorm(s backend.Stream, out, x, w backend.Tensor, eps float32) error {
	defer roundOut(out)
	return h.Backend.RMSNorm(s, asF32(out), asF32(x), asF32(w), eps)
}

// RMSNormQuant rounds the normalized rows to x's dtype before quantizing them, as a
// device does (its error against the f32 reference is what the tolerance allows for).
func (h halfCPU) RMSNormQuant(s backend.Stream, q, scales, x, w backend.Tensor, eps float32) error {
	n, d := x.Rows, x.Cols
	y := make([]float32, n*d)
	if err := h.Backend.RMSNorm(s, cpu.F32(y, n, d), asF32(x), asF32(w), eps); err != nil {
		return err
	}
	if isHalf(x.DType) {
		for i, v := range y {
			y[i] = backendtest.Round(x.DType, v)
		}
	}
	qs, sc := make([]int8, n*d), make([]float32, n)
	for i := 0; i < n; i++ {
		sc[i] = cpu.QuantizeRow(qs[i*d:(i+1)*d], y[i*d:(i+1)*d])
	}
	if err := h.Backend.Upload(q, backend.Bytes(qs), backend.I8); err != nil {
		return err
	}
	return h.Backend.Upload(scales, backend.Bytes(sc), backend.F32)
}

func (h halfCPU) MatMul(s backend.Stream, out, x backend.Tensor, w *backend.Weight, epi backend.Epilogue) error {
	defer roundOut(out)
	return h.Backend.MatMul(s, asF32(out), asF32(x), f32Weight(w), epi)
}

func (h halfCPU) RoPE(s backend.Stream, x, pos backend.Tensor, r *backend.RoPE) error {
	defer roundOut(x)
	return h.Backend.RoPE(s, asF32(x), pos, r)
}

func (h halfCPU) WriteKV(s backend.Stream, kv *backend.KVCache, layer int, k, v backend.Tensor, at *backend.KVIndex) error {
	defer roundOut(kv.K[layer])
	defer roundOut(kv.V[layer])
	return h.Backend.WriteKV(s, f32KV(kv), layer, asF32(k), asF32(v), at)
}

func (h halfCPU) Attention(s backend.Stream, out, q backend.Tensor, kv *backend.KVCache, layer int, at *backend.KVIndex, hd *backend.AttnHeads) error {
	defer roundOut(out)
	return h.Backend.Attention(s, asF32(out), asF32(q), f32KV(kv), layer, at, hd)
}

func (h halfCPU) SiLUMul(s backend.Stream, out, gate, up backend.Tensor) error {
	defer roundOut(out)
	return h.Backend.SiLUMul(s, asF32(out), asF32(gate), asF32(up))
}

func (h halfCPU) GatherRows(s backend.Stream, out, x, rows backend.Tensor) error {
	defer roundOut(out)
	return h.Backend.GatherRows(s, asF32(out), asF32(x), rows)
}

func (h halfCPU) LoRA(s backend.Stream, out, x backend.Tensor, st *backend.LoRAStack, slots backend.Tensor) error {
	defer roundOut(out)
	f := *st
	f.A, f.B = asF32(st.A), asF32(st.B)
	return h.Backend.LoRA(s, asF32(out), asF32(x), &f, slots)
}

// The f16/bf16 path: a backend whose only error is rounding what it writes passes every
// case in every dtype, each under the tolerance of its precision class, with room to
// spare; copies of already-rounded inputs are exact, showing that the reference saw the
// rounded inputs.
func TestHalfPrecisionPath(t *testing.T) {
	ref := cpu.New(cpu.Options{})
	for _, tc := range []struct {
		h   halfCPU
		dts []backend.DType
	}{
		{halfCPU{Backend: cpu.New(cpu.Options{}), kv: backend.F16, w: backend.F32}, []backend.DType{backend.F16}},
		{halfCPU{Backend: cpu.New(cpu.Options{}), kv: backend.BF16, w: backend.BF16}, []backend.DType{backend.F32, backend.F16, backend.BF16}},
	} {
		h := tc.h
		rep := backendtest.Run(nil, ref, h, backendtest.Options{DTypes: tc.dts})
		if rep.Failed() || rep.Total.Skip > 0 {
			t.Fatalf("%s\n%s", rep.Summary(), rep.Text())
		}
		worst := map[string]float64{} // op/class -> largest nmse/tolerance
		for _, r := range rep.Results {
			want := r.DType
			// (This fake keeps low-rank factors as given: only whole weights go to 16 bits.)
			weights := (r.Op == backendtest.OpMatMul || r.Op == backendtest.OpEmbed) &&
				!strings.Contains(r.Operands, "w=i8") && !strings.Contains(r.Name, ",rank=")
			if weights && rank(h.w.String()) > rank(want) {
				want = h.w.String() // f32 weights stored in 16 bits
			}
			kvOp := r.Op == backendtest.OpWriteKV || r.Op == backendtest.OpAttention
			if kvOp && rank(h.kv.String()) > rank(want) {
				want = h.kv.String()
			}
			if r.Class != want {
				t.Errorf("%s: class %s, want %s [%s]", r.Name, r.Class, want, r.Operands)
			}
			if r.Op == backendtest.OpGatherRows && r.NMSE != 0 {
				t.Errorf("a copy of rounded inputs is not exact: %s", r.Line())
			}
			key := r.Op + "/" + r.Class
			if q := float64(r.NMSE) / float64(r.Tol); r.Tol > 0 && q > worst[key] {
				worst[key] = q
			}
		}
		keys := make([]string, 0, len(worst))
		for k := range worst {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if worst[k] > 0.5 {
				t.Errorf("%s: %s uses %.0f%% of its tolerance on output rounding alone", h.Name(), k, 100*worst[k])
			}
			t.Logf("%s: %s worst nmse = %.2g × tolerance", h.Name(), k, worst[k])
		}
	}
}

func rank(s string) int {
	switch s {
	case "f16":
		return 1
	case "bf16":
		return 2
	}
	return 0
}
