package backendtest_test

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/backendtest"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
)

// Deliberately broken CPU backends: each embeds the real one and breaks one op. The
// harness must fail that op and pass every other.

// strayRMSNorm writes one element past its output view (an off-by-one loop bound).
type strayRMSNorm struct{ *cpu.Backend }

func (b strayRMSNorm) RMSNorm(s backend.Stream, out, x, w backend.Tensor, eps float32) error {
	if err := b.Backend.RMSNorm(s, out, x, w, eps); err != nil {
		return err
	}
	o := cpu.Float32s(out)
	o = o[:len(o)+1] // the view's storage continues past it
	o[len(o)-1] = o[len(o)-2]
	return nil
}

// truncRMSNormQuant quantizes toward zero instead of to the nearest step.
type truncRMSNormQuant struct{ *cpu.Backend }

func (b truncRMSNormQuant) RMSNormQuant(s backend.Stream, q, scales, x, w backend.Tensor, eps float32) error {
	n, d := x.Rows, x.Cols
	y := make([]float32, n*d)
	if err := b.Backend.RMSNorm(s, cpu.F32(y, n, d), x, w, eps); err != nil {
		return err
	}
	qs, sc := make([]int8, n*d), make([]float32, n)
	for i := 0; i < n; i++ {
		sc[i] = cpu.QuantizeRow(qs[i*d:(i+1)*d], y[i*d:(i+1)*d])
		for k := range d {
			qs[i*d+k] = int8(y[i*d+k] / sc[i]) // truncated
		}
	}
	if err := b.Backend.Upload(q, backend.Bytes(qs), backend.I8); err != nil {
		return err
	}
	return b.Backend.Upload(scales, backend.Bytes(sc), backend.F32)
}

// shortRMSNormQuant leaves the last value of q as it found it.
type shortRMSNormQuant struct{ *cpu.Backend }

func (b shortRMSNormQuant) RMSNormQuant(s backend.Stream, q, scales, x, w backend.Tensor, eps float32) error {
	if q.Len() <= 1 {
		return b.Backend.RMSNormQuant(s, q, scales, x, w, eps)
	}
	keep := make([]byte, 1)
	if err := b.Backend.Download(keep, backend.I8, q.View(q.Len()-1, 1, 1)); err != nil {
		return err
	}
	if err := b.Backend.RMSNormQuant(s, q, scales, x, w, eps); err != nil {
		return err
	}
	return b.Backend.Upload(q.View(q.Len()-1, 1, 1), keep, backend.I8)
}

// shiftedAttention reads block table entry i+1 where it should read entry i.
type shiftedAttention struct{ *cpu.Backend }

func (b shiftedAttention) Attention(s backend.Stream, out, q backend.Tensor, kv *backend.KVCache, layer int, at *backend.KVIndex, h *backend.AttnHeads) error {
	t, err := readI32(b.Backend, at.Tables)
	if err != nil {
		return err
	}
	w := at.Tables.Cols
	bad := make([]int32, len(t))
	for i := range t {
		r, j := i/w, i%w
		bad[i] = t[r*w+(j+1)%w]
	}
	x := *at
	if x.Tables, err = newI32(b.Backend, at.Tables.Rows, w, bad); err != nil {
		return err
	}
	return b.Backend.Attention(s, out, q, kv, layer, &x, h)
}

// ownTableAttention reads row i's block table from row i of the tables, not row Seq[i].
type ownTableAttention struct{ *cpu.Backend }

func (b ownTableAttention) Attention(s backend.Stream, out, q backend.Tensor, kv *backend.KVCache, layer int, at *backend.KVIndex, h *backend.AttnHeads) error {
	seq := make([]int32, at.Seq.Cols)
	for i := range seq {
		seq[i] = int32(i)
	}
	x := *at
	var err error
	if x.Seq, err = newI32(b.Backend, 1, len(seq), seq); err != nil {
		return err
	}
	return b.Backend.Attention(s, out, q, kv, layer, &x, h)
}

// shiftedWriteKV writes each row into the next block of the cache.
type shiftedWriteKV struct{ *cpu.Backend }

func (b shiftedWriteKV) WriteKV(s backend.Stream, kv *backend.KVCache, layer int, k, v backend.Tensor, at *backend.KVIndex) error {
	x := *at
	var err error
	if x.Tables, err = mapI32(b.Backend, at.Tables, func(blk int32) int32 {
		if blk >= 0 && int(blk) < kv.Blocks {
			return (blk + 1) % int32(kv.Blocks)
		}
		return blk
	}); err != nil {
		return err
	}
	return b.Backend.WriteKV(s, kv, layer, k, v, &x)
}

// nanSiLUMul leaves a NaN in one output element.
type nanSiLUMul struct{ *cpu.Backend }

func (b nanSiLUMul) SiLUMul(s backend.Stream, out, gate, up backend.Tensor) error {
	if err := b.Backend.SiLUMul(s, out, gate, up); err != nil {
		return err
	}
	o := cpu.Float32s(out)
	o[len(o)/2] = float32(math.NaN())
	return nil
}

// transposedMatMul reads W as [In][Out]: its MatMul uses a twin of each weight whose
// element (j, k) comes from flat index k*Out + j instead of j*In + k.
type transposedMatMul struct {
	*cpu.Backend
	twin map[*backend.Weight]*backend.Weight
}

func (b transposedMatMul) LoadWeight(h *backend.HostWeight) (*backend.Weight, error) {
	w, err := b.Backend.LoadWeight(h)
	if err != nil {
		return nil, err
	}
	t := *h
	if h.F32 != nil {
		t.F32 = transpose(h.F32, h.In, h.Out)
	} else {
		t.I8 = transpose(h.I8, h.In, h.Out)
	}
	if b.twin[w], err = b.Backend.LoadWeight(&t); err != nil {
		return nil, err
	}
	return w, nil
}

// transpose returns the [cols][rows] transpose of m [rows][cols].
func transpose[T any](m []T, rows, cols int) []T {
	t := make([]T, len(m))
	const tile = 64 // cache-sized tiles: the 4096×4096 weight stays quick under -race
	for r0 := 0; r0 < rows; r0 += tile {
		for c0 := 0; c0 < cols; c0 += tile {
			r1, c1 := min(r0+tile, rows), min(c0+tile, cols)
			for r := r0; r < r1; r++ {
				src := m[r*cols+c0 : r*cols+c1]
				for c, v := range src {
					t[(c0+c)*rows+r] = v
				}
			}
		}
	}
	return t
}

func (b transposedMatMul) MatMul(s backend.Stream, out, x backend.Tensor, w *backend.Weight, epi backend.Epilogue) error {
	return b.Backend.MatMul(s, out, x, b.twin[w], epi)
}

// shortEmbed skips the last row of its output.
type shortEmbed struct{ *cpu.Backend }

func (b shortEmbed) Embed(s backend.Stream, out backend.Tensor, table *backend.Weight, ids backend.Tensor) error {
	n := ids.Cols - 1
	return b.Backend.Embed(s, out.SliceRows(0, n), table, ids.View(0, 1, n))
}

// lateRoPE rotates by position+1.
type lateRoPE struct{ *cpu.Backend }

func (b lateRoPE) RoPE(s backend.Stream, x, pos backend.Tensor, r *backend.RoPE) error {
	p, err := mapI32(b.Backend, pos, func(p int32) int32 {
		if p >= 0 {
			return p + 1
		}
		return p
	})
	if err != nil {
		return err
	}
	return b.Backend.RoPE(s, x, p, r)
}

// inPlaceSiLUMul computes into gate, then copies to out: the input is modified.
type inPlaceSiLUMul struct{ *cpu.Backend }

func (b inPlaceSiLUMul) SiLUMul(s backend.Stream, out, gate, up backend.Tensor) error {
	if err := b.Backend.SiLUMul(s, gate, gate, up); err != nil {
		return err
	}
	copy(cpu.Float32s(out), cpu.Float32s(gate))
	return nil
}

// strayReadGather reads its source one element past where its view starts.
type strayReadGather struct{ *cpu.Backend }

func (b strayReadGather) GatherRows(s backend.Stream, out, x, rows backend.Tensor) error {
	x.Off++
	return b.Backend.GatherRows(s, out, x, rows)
}

// Index tensors, read and rewritten on the host.

func readI32(be *cpu.Backend, t backend.Tensor) ([]int32, error) {
	v := make([]int32, t.Len())
	return v, be.Download(backend.Bytes(v), backend.I32, t)
}

func newI32(be *cpu.Backend, rows, cols int, v []int32) (backend.Tensor, error) {
	t, err := be.Alloc(backend.I32, rows, cols)
	if err != nil {
		return t, err
	}
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], uint32(x))
	}
	return t, be.Upload(t, raw, backend.I32)
}

// mapI32 returns t with f applied to each element, as a new tensor.
func mapI32(be *cpu.Backend, t backend.Tensor, f func(int32) int32) (backend.Tensor, error) {
	v, err := readI32(be, t)
	if err != nil {
		return t, err
	}
	for i := range v {
		v[i] = f(v[i])
	}
	return newI32(be, t.Rows, t.Cols, v)
}

// shortAttention ignores the last block of a context that spans several.
type shortAttention struct{ *cpu.Backend }

func (b shortAttention) Attention(s backend.Stream, out, q backend.Tensor, kv *backend.KVCache, layer int, at *backend.KVIndex, h *backend.AttnHeads) error {
	bs := int32(kv.BlockSize)
	x := *at
	var err error
	if x.Pos, err = mapI32(b.Backend, at.Pos, func(p int32) int32 {
		if need := (p + bs) / bs; p >= 0 && need >= 2 {
			return (need-1)*bs - 1
		}
		return p
	}); err != nil {
		return err
	}
	return b.Backend.Attention(s, out, q, kv, layer, &x, h)
}

// idleRoPE rotates idle rows too, to positions made of their negative ones.
type idleRoPE struct{ *cpu.Backend }

func (b idleRoPE) RoPE(s backend.Stream, x, pos backend.Tensor, r *backend.RoPE) error {
	p, err := mapI32(b.Backend, pos, func(p int32) int32 { return p & 0x7fff })
	if err != nil {
		return err
	}
	return b.Backend.RoPE(s, x, p, r)
}

// idleWriteKV writes idle rows at position 0.
type idleWriteKV struct{ *cpu.Backend }

func (b idleWriteKV) WriteKV(s backend.Stream, kv *backend.KVCache, layer int, k, v backend.Tensor, at *backend.KVIndex) error {
	x := *at
	var err error
	if x.Pos, err = mapI32(b.Backend, at.Pos, func(p int32) int32 { return max(p, 0) }); err != nil {
		return err
	}
	return b.Backend.WriteKV(s, kv, layer, k, v, &x)
}

// clampEmbed clamps ids outside the vocabulary into it instead of writing zeros.
type clampEmbed struct{ *cpu.Backend }

func (b clampEmbed) Embed(s backend.Stream, out backend.Tensor, table *backend.Weight, ids backend.Tensor) error {
	v, err := mapI32(b.Backend, ids, func(id int32) int32 { return min(max(id, 0), int32(table.Out-1)) })
	if err != nil {
		return err
	}
	return b.Backend.Embed(s, out, table, v)
}

// swappedGLU computes silu(up)·gate in the SiLU-GLU epilogue.
type swappedGLU struct{ *cpu.Backend }

func (b swappedGLU) MatMul(s backend.Stream, out, x backend.Tensor, w *backend.Weight, epi backend.Epilogue) error {
	if !epi.SiLUGLU {
		return b.Backend.MatMul(s, out, x, w, epi)
	}
	n, h := x.Rows, out.Cols
	gu := make([]float32, n*2*h)
	if err := b.Backend.MatMul(s, cpu.F32(gu, n, 2*h), x, w, backend.Epilogue{}); err != nil {
		return err
	}
	o := cpu.Float32s(out)
	for i := range n {
		for j := range h {
			g, u := gu[i*2*h+j], gu[i*2*h+h+j]
			o[i*h+j] = g * u / (1 + float32(math.Exp(float64(-u))))
		}
	}
	return nil
}

// twiceLoRA adds each row's adapter product twice.
type twiceLoRA struct{ *cpu.Backend }

func (b twiceLoRA) LoRA(s backend.Stream, out, x backend.Tensor, st *backend.LoRAStack, slots backend.Tensor) error {
	if err := b.Backend.LoRA(s, out, x, st, slots); err != nil {
		return err
	}
	return b.Backend.LoRA(s, out, x, st, slots)
}

// fullRankLoRA ignores the slots' ranks and reads MaxRank rows of every slot (the
// padding of a lower-rank adapter).
type fullRankLoRA struct{ *cpu.Backend }

func (b fullRankLoRA) LoRA(s backend.Stream, out, x backend.Tensor, st *backend.LoRAStack, slots backend.Tensor) error {
	full := make([]int32, st.Slots)
	for i := range full {
		full[i] = int32(st.MaxRank)
	}
	rt, err := b.Backend.Stage(s, full)
	if err != nil {
		return err
	}
	f := *st
	f.Ranks = rt
	return b.Backend.LoRA(s, out, x, &f, slots)
}

func TestBrokenBackendsFail(t *testing.T) {
	ref := cpu.New(cpu.Options{})
	c := func() *cpu.Backend { return cpu.New(cpu.Options{}) }
	for _, tc := range []struct {
		name  string
		b     backend.Backend
		op    string
		want  string // in at least one failure's detail
		match string // only the cases whose name holds this
	}{
		{"stray write after the output", strayRMSNorm{c()}, backendtest.OpRMSNorm, "stray write after output out", ""},
		{"attention reads block table entry i+1", shiftedAttention{c()}, backendtest.OpAttention, "nmse", ""},
		{"write kv into the next block", shiftedWriteKV{c()}, backendtest.OpWriteKV, "stray write into the KV cache", ""},
		{"a NaN in the output", nanSiLUMul{c()}, backendtest.OpSiLUMul, "NaN/Inf", ""},
		{"transposed weight", transposedMatMul{c(), map[*backend.Weight]*backend.Weight{}}, backendtest.OpMatMul, "nmse", ""},
		{"last row unwritten", shortEmbed{c()}, backendtest.OpEmbed, "unwritten", ""},
		{"rope position off by one", lateRoPE{c()}, backendtest.OpRoPE, "nmse", ""},
		{"an input written", inPlaceSiLUMul{c()}, backendtest.OpSiLUMul, "input gate modified", ""},
		{"a read past the input", strayReadGather{c()}, backendtest.OpGatherRows, "NaN/Inf", ""},
		{"attention ignores the last block", shortAttention{c()}, backendtest.OpAttention, "nmse", ""},
		{"attention reads table row i, not Seq[i]", ownTableAttention{c()}, backendtest.OpAttention, "nmse", ""},
		{"rope rotates idle rows", idleRoPE{c()}, backendtest.OpRoPE, "nmse", "idle="},
		{"write kv writes idle rows", idleWriteKV{c()}, backendtest.OpWriteKV, "stray write into the KV cache", "idle="},
		{"embed clamps bad ids", clampEmbed{c()}, backendtest.OpEmbed, "nmse", "bad="},
		{"silu-glu swaps gate and up", swappedGLU{c()}, backendtest.OpMatMul, "nmse", ",glu"},
		{"lora adds the product twice", twiceLoRA{c()}, backendtest.OpLoRA, "nmse", ""},
		{"lora reads past a slot's rank", fullRankLoRA{c()}, backendtest.OpLoRA, "NaN/Inf", ""},
		{"rmsnorm quant truncates", truncRMSNormQuant{c()}, backendtest.OpRMSNormQuant, "nmse", ""},
		{"rmsnorm quant leaves a value unwritten", shortRMSNormQuant{c()}, backendtest.OpRMSNormQuant, "unwritten", "dim=5,"},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			rep := backendtest.Run(nil, ref, tc.b, backendtest.Options{DTypes: []backend.DType{backend.F32}, Exclude: backendtest.PathCases, Match: tc.match})
			total, failed, found := 0, 0, false
			for _, r := range rep.Results {
				if r.Op != tc.op {
					if r.Status != backendtest.Pass {
						t.Errorf("%s: unaffected case %s", tc.name, r.Line())
					}
					continue
				}
				total++
				if r.Status == backendtest.Fail {
					failed++
					found = found || strings.Contains(r.Detail, tc.want)
				} else if r.Status != backendtest.Pass {
					t.Errorf("%s: %s", tc.name, r.Line())
				}
			}
			t.Logf("%s: %d of %d %s cases fail; %s", tc.name, failed, total, tc.op, rep.Summary())
			for _, r := range rep.Failures()[:min(2, len(rep.Failures()))] {
				t.Logf("  %.300s", r.Line())
			}
			if !rep.Failed() || 2*failed < total {
				t.Errorf("%s: only %d of %d %s cases fail", tc.name, failed, total, tc.op)
			}
			if !found {
				t.Errorf("%s: no failure mentions %q", tc.name, tc.want)
			}
		})
	}
}

// fragmentMatMul models a fragment-layout bug: row 3 of every 16-row tile of its
// (pretend) tensor-core kernel comes out doubled. It names that kernel (Kerneler).
type fragmentMatMul struct{ *cpu.Backend }

func (b fragmentMatMul) MatMul(s backend.Stream, out, x backend.Tensor, w *backend.Weight, epi backend.Epilogue) error {
	if err := b.Backend.MatMul(s, out, x, w, epi); err != nil {
		return err
	}
	o := cpu.Float32s(out)
	for r := 3; r < out.Rows; r += 16 {
		for c := 0; c < out.Cols; c++ {
			o[r*out.Cols+c] *= 2
		}
	}
	return nil
}

func (fragmentMatMul) MatMulKernel(n, in, out int, w backend.DType, epi backend.Epilogue) (string, int, int) {
	return "fake-mma", 16, 8
}

// TestFailureDiagnostics: a failing case records where its errors are: the worst
// elements, the count over tolerance, the error map by tile position (the bad tile
// row stands out), the bad rows and the first bad elements with their values.
func TestFailureDiagnostics(t *testing.T) {
	rep := backendtest.Run(nil, cpu.New(cpu.Options{}), fragmentMatMul{cpu.New(cpu.Options{})},
		backendtest.Options{Ops: []string{backendtest.OpMatMul}, Match: "n=17,in=64,out=33", DTypes: []backend.DType{backend.F32}})
	fails := rep.Failures()
	if len(fails) == 0 {
		t.Fatalf("no failure: %s", rep.Summary())
	}
	r := fails[0]
	if r.Kernel != "fake-mma" || len(r.Diags) != 1 {
		t.Fatalf("kernel %q, %d diags: %s", r.Kernel, len(r.Diags), r.Line())
	}
	d := r.Diags[0]
	t.Logf("%s\ntile map:\n%s", r.Line(), strings.Join(d.TileMap, "\n"))
	if d.Rows != 17 || d.Cols != 33 || d.TileRows != 16 || d.TileCols != 8 || len(d.TileMap) != 16 {
		t.Fatalf("shape %dx%d tile %dx%d, %d map rows", d.Rows, d.Cols, d.TileRows, d.TileCols, len(d.TileMap))
	}
	for i, line := range d.TileMap {
		want := strings.Repeat(".", 8)
		if i == 3 {
			want = strings.Repeat("#", 8)
		}
		if line != want {
			t.Errorf("tile map row %d: %q, want %q", i, line, want)
		}
	}
	if d.MaxAbsRow != 3 || d.MaxRelRow != 3 || d.Over == 0 || d.Over > 33 {
		t.Errorf("worst at rows %d/%d, %d over tolerance", d.MaxAbsRow, d.MaxRelRow, d.Over)
	}
	if len(d.BadRows) != 1 || d.BadRows[0] != (backendtest.Span{First: 3, Last: 3, Bad: d.Over}) {
		t.Errorf("bad rows %+v", d.BadRows)
	}
	if len(d.First) == 0 || len(d.First) > 8 || d.First[0].Row != 3 || d.First[0].Got != 2*d.First[0].Want {
		t.Errorf("first bad %+v", d.First)
	}
}
