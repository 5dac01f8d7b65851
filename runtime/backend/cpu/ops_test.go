package cpu_test

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
)

// i32Tensor uploads data as an i32 [rows][cols] view one row into a larger allocation
// (so the ops must honour Off).
func i32Tensor(t testing.TB, be *cpu.Backend, rows, cols int, data []int32) backend.Tensor {
	t.Helper()
	require.Len(t, data, rows*cols)
	whole, err := be.Alloc(backend.I32, rows+2, cols)
	require.NoError(t, err)
	raw := make([]byte, 4*whole.Len())
	for i := range whole.Len() {
		binary.LittleEndian.PutUint32(raw[4*i:], uint32(0x7fff0000)) // junk around the view
	}
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*(cols+i):], uint32(v))
	}
	require.NoError(t, be.Upload(whole, raw, backend.I32))
	return whole.SliceRows(1, rows+1)
}

// index builds a KVIndex of rows rows over tables [seqs][width].
func index(t testing.TB, be *cpu.Backend, pos, seq, tables []int32, width, maxCtx int) *backend.KVIndex {
	return &backend.KVIndex{Pos: i32Tensor(t, be, 1, len(pos), pos), Seq: i32Tensor(t, be, 1, len(seq), seq),
		Tables: i32Tensor(t, be, len(tables)/width, width, tables), MaxCtx: maxCtx}
}

// iota is 0, 1, ..., n-1: each row its own sequence.
func iota(n int) []int32 {
	s := make([]int32, n)
	for i := range s {
		s[i] = int32(i)
	}
	return s
}

func bits(s []float32) []uint32 {
	b := make([]uint32, len(s))
	for i, v := range s {
		b[i] = math.Float32bits(v)
	}
	return b
}

func randF32(r *rand.Rand, n int, a float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = (2*r.Float32() - 1) * a
	}
	return s
}

func nans(n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(math.NaN())
	}
	return s
}

func loadTable(t *testing.T, be *cpu.Backend, r *rand.Rand, vocab, dim int, quant bool) *backend.Weight {
	w, _ := loadTableHost(t, be, r, vocab, dim, quant)
	return w
}

// loadTableHost is loadTable, also returning the host weight.
func loadTableHost(t *testing.T, be *cpu.Backend, r *rand.Rand, vocab, dim int, quant bool) (*backend.Weight, *backend.HostWeight) {
	h := &backend.HostWeight{Name: "table", Out: vocab, In: dim}
	if quant {
		h.I8 = make([]int8, vocab*dim)
		for i := range h.I8 {
			h.I8[i] = int8(r.IntN(256) - 128)
		}
		h.Scales = randF32(r, vocab, 0.01)
	} else {
		h.F32 = randF32(r, vocab*dim, 1)
	}
	w, err := be.LoadWeight(h)
	require.NoError(t, err)
	return w, h
}

// Embed gives zero rows for ids outside the vocabulary, and the table's rows (dequantized)
// for the others.
func TestEmbedRows(t *testing.T) {
	be := cpu.New(cpu.Options{})
	defer be.Close()
	s, _ := be.NewStream()
	r := rand.New(rand.NewPCG(1, 2))
	const vocab = 13
	for _, quant := range []bool{false, true} {
		for _, dim := range []int{5, 48} {
			w, hw := loadTableHost(t, be, r, vocab, dim, quant)
			for _, rows := range []int{1, 3, 7} {
				t.Run(fmt.Sprintf("i8=%v,dim=%d,rows=%d", quant, dim, rows), func(t *testing.T) {
					ids := make([]int32, rows)
					for i := range ids {
						ids[i] = int32(r.IntN(vocab))
					}
					ids[0] = vocab - 1
					if rows >= 3 {
						ids[1] = -1
						ids[rows-1] = vocab
					}
					if rows >= 7 {
						ids[3], ids[4] = math.MinInt32, 1<<30
					}
					got := nans(rows * dim)
					require.NoError(t, be.Embed(s, cpu.F32(got, rows, dim), w, i32Tensor(t, be, 1, rows, ids)))

					want := make([]float32, rows*dim) // invalid ids: zero rows
					for i, id := range ids {
						if id < 0 || id >= vocab {
							continue
						}
						for k := range dim {
							if quant {
								want[i*dim+k] = float32(hw.I8[int(id)*dim+k]) * hw.Scales[id]
							} else {
								want[i*dim+k] = hw.F32[int(id)*dim+k]
							}
						}
					}
					require.Equal(t, bits(want), bits(got))
				})
			}
		}
	}
}

// RoPE leaves idle rows as they are and rotates each other row as it would alone.
func TestRoPEIdleRows(t *testing.T) {
	be := cpu.New(cpu.Options{})
	defer be.Close()
	s, _ := be.NewStream()
	r := rand.New(rand.NewPCG(3, 4))
	const heads = 6
	for _, style := range []backend.RopeStyle{backend.RopePairs, backend.RopeRotateHalf} {
		for _, hd := range []int{8, 48} {
			freq := make([]float32, hd/2)
			for i := range freq {
				freq[i] = float32(math.Pow(10000, -float64(2*i)/float64(hd)))
			}
			rope := &backend.RoPE{Style: style, HeadDim: hd, InvFreq: freq}
			for _, rows := range []int{1, 3, 7} {
				t.Run(fmt.Sprintf("style=%d,hd=%d,rows=%d", style, hd, rows), func(t *testing.T) {
					cols := heads * hd
					pos := make([]int32, rows)
					for i := range pos {
						pos[i] = int32(r.IntN(5000))
					}
					if rows >= 3 {
						pos[0] = -1 // idle rows, at both ends of a run
					}
					if rows >= 7 {
						pos[3], pos[6] = math.MinInt32, -7
					}
					x := randF32(r, rows*cols, 1)
					got := slices.Clone(x)
					require.NoError(t, be.RoPE(s, cpu.F32(got, rows, cols), i32Tensor(t, be, 1, rows, pos), rope))

					want := slices.Clone(x)
					for i, p := range pos {
						if p >= 0 {
							require.NoError(t, be.RoPE(s, cpu.F32(want[i*cols:(i+1)*cols], 1, cols), i32Tensor(t, be, 1, 1, pos[i:i+1]), rope))
						} else {
							require.Equal(t, bits(x[i*cols:(i+1)*cols]), bits(got[i*cols:(i+1)*cols]), "idle row %d touched", i)
						}
					}
					require.Equal(t, bits(want), bits(got))
				})
			}
		}
	}
}

// cacheCopy returns a cache of the same shape holding the same values.
func cacheCopy(t *testing.T, be *cpu.Backend, kv *backend.KVCache) *backend.KVCache {
	c, err := be.AllocKV(kv.Layers, kv.Blocks, kv.BlockSize, kv.KVHeads, kv.HeadDim)
	require.NoError(t, err)
	for l := range kv.Layers {
		copy(cpu.Float32s(c.K[l]), cpu.Float32s(kv.K[l]))
		copy(cpu.Float32s(c.V[l]), cpu.Float32s(kv.V[l]))
	}
	return c
}

func randomCache(t *testing.T, be *cpu.Backend, r *rand.Rand, layers, blocks, bs, kvh, hd int) *backend.KVCache {
	kv, err := be.AllocKV(layers, blocks, bs, kvh, hd)
	require.NoError(t, err)
	for l := range layers {
		copy(cpu.Float32s(kv.K[l]), randF32(r, kv.K[l].Len(), 1))
		copy(cpu.Float32s(kv.V[l]), randF32(r, kv.V[l].Len(), 1))
	}
	return kv
}

// WriteKV stores each valid row at the slot its sequence's table gives and skips idle
// rows and rows with index data out of range, touching nothing else.
func TestWriteKVSlots(t *testing.T) {
	be := cpu.New(cpu.Options{})
	defer be.Close()
	s, _ := be.NewStream()
	r := rand.New(rand.NewPCG(5, 6))
	const kvh, blocks, maxBlocks, layer = 2, 9, 4, 1
	for _, bs := range []int{16, 5} {
		for _, hd := range []int{8, 48} {
			for _, rows := range []int{1, 3, 7} {
				t.Run(fmt.Sprintf("bs=%d,hd=%d,rows=%d", bs, hd, rows), func(t *testing.T) {
					kv := randomCache(t, be, r, 2, blocks, bs, kvh, hd)
					want := cacheCopy(t, be, kv)
					// Every row writes its own block (distinct slots) through a shuffled
					// table row; the entries it does not use are junk, in range or not.
					own, seq := r.Perm(blocks), make([]int32, rows)
					for i, j := range r.Perm(rows) {
						seq[i] = int32(j)
					}
					pos := make([]int32, rows)
					tables := make([]int32, rows*maxBlocks)
					for i := range tables {
						tables[i] = int32(r.IntN(blocks+4) - 2)
					}
					for i := range rows {
						pos[i] = int32(r.IntN(maxBlocks * bs))
						tables[int(seq[i])*maxBlocks+int(pos[i])/bs] = int32(own[i])
					}
					if rows >= 3 {
						pos[1] = -1 // idle
					}
					if rows >= 7 {
						tables[int(seq[2])*maxBlocks+int(pos[2])/bs] = -1     // entry below the cache
						tables[int(seq[4])*maxBlocks+int(pos[4])/bs] = blocks // entry past the cache
						pos[5] = int32(maxBlocks*bs + 2)                      // past the table
						pos[6] = math.MinInt32                                // idle
						seq[3] = int32(rows)                                  // no such sequence
					}
					n := rows * kvh * hd
					k, v := randF32(r, n, 1), randF32(r, n, 1)
					kt, vt := cpu.F32(k, rows, kvh*hd), cpu.F32(v, rows, kvh*hd)
					require.NoError(t, be.WriteKV(s, kv, layer, kt, vt, index(t, be, pos, seq, tables, maxBlocks, 1)))

					written := 0
					for i, p := range pos {
						if p < 0 || int(p)/bs >= maxBlocks || int(seq[i]) >= rows {
							continue
						}
						blk := tables[int(seq[i])*maxBlocks+int(p)/bs]
						if blk < 0 || blk >= blocks {
							continue
						}
						written++
						for g := range kvh {
							dst := ((int(blk)*kvh+g)*bs + int(p)%bs) * hd
							copy(cpu.Float32s(want.K[layer])[dst:dst+hd], k[i*kvh*hd+g*hd:])
							copy(cpu.Float32s(want.V[layer])[dst:dst+hd], v[i*kvh*hd+g*hd:])
						}
					}
					require.Equal(t, map[int]int{1: 1, 3: 2, 7: 1}[rows], written)
					for l := range 2 {
						require.Equal(t, bits(cpu.Float32s(want.K[l])), bits(cpu.Float32s(kv.K[l])), "K layer %d", l)
						require.Equal(t, bits(cpu.Float32s(want.V[l])), bits(cpu.Float32s(kv.V[l])), "V layer %d", l)
					}
				})
			}
		}
	}
}

// attnRows builds one-row sequences (pos, tables [rows][maxBlocks]) from row kinds,
// returning which rows are valid.
func attnRows(r *rand.Rand, kinds []string, bs, blocks, maxBlocks, maxCtx int) (pos, tables []int32, valid []bool) {
	pos = make([]int32, len(kinds))
	tables = make([]int32, len(kinds)*maxBlocks)
	valid = make([]bool, len(kinds))
	limit := min(maxCtx, maxBlocks*bs) // valid contexts stay within both bounds
	// Positions around block boundaries, and random ones.
	near := []int{0, bs - 1, bs, 2*bs + 1, 3*bs - 1, limit - 1}
	for i, kind := range kinds {
		row := tables[i*maxBlocks : (i+1)*maxBlocks]
		for j, b := range r.Perm(blocks)[:maxBlocks] {
			row[j] = int32(b)
		}
		p := near[r.IntN(len(near))]
		if r.IntN(3) == 0 {
			p = r.IntN(limit)
		}
		p = min(p, limit-1)
		need := (p + bs) / bs
		switch kind {
		case "valid":
			valid[i] = true
			for j := need; j < maxBlocks; j++ { // past the context: never read
				row[j] = int32([]int{-1, blocks, blocks + 5, math.MinInt32}[j%4])
			}
		case "idle":
			p = -1 - r.IntN(3)
			row[0] = -1
		case "over_ctx":
			p = maxCtx
		case "over_table":
			p = maxBlocks * bs
		case "bad_neg":
			row[r.IntN(need)] = -1
		case "bad_big":
			row[need-1] = int32(blocks)
		default:
			panic(kind)
		}
		pos[i] = int32(p)
	}
	return pos, tables, valid
}

// Attention of a batch gives, bit for bit, what each valid row gives alone, and zeros
// for idle rows and rows with index data out of range.
func TestAttentionRows(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const heads, kvh, blocks, maxBlocks, layer = 6, 2, 40, 8, 1
	for _, threads := range []int{1, 0} {
		be := cpu.New(cpu.Options{Threads: threads})
		s, _ := be.NewStream()
		for _, bs := range []int{16, 5} {
			for _, hd := range []int{8, 48} {
				for _, kinds := range [][]string{
					{"valid"},
					{"idle", "valid", "over_ctx"},
					{"valid", "bad_neg", "valid", "idle", "over_table", "bad_big", "valid"},
				} {
					rows := len(kinds)
					// over_ctx needs maxCtx within the table, over_table beyond it.
					maxCtx := (maxBlocks-2)*bs + 1
					if slices.Contains(kinds, "over_table") {
						maxCtx = maxBlocks*bs + 3
					}
					t.Run(fmt.Sprintf("threads=%d,bs=%d,hd=%d,rows=%d", threads, bs, hd, rows), func(t *testing.T) {
						kv := randomCache(t, be, r, 2, blocks, bs, kvh, hd)
						pos, tables, valid := attnRows(r, kinds, bs, blocks, maxBlocks, maxCtx)
						cols := heads * hd
						q := cpu.F32(randF32(r, rows*cols, 2), rows, cols)
						h := &backend.AttnHeads{Heads: heads, KVHeads: kvh, HeadDim: hd, Scale: float32(1 / math.Sqrt(float64(hd)))}
						got := nans(rows * cols)
						require.NoError(t, be.Attention(s, cpu.F32(got, rows, cols), q, kv, layer, index(t, be, pos, iota(rows), tables, maxBlocks, maxCtx), h))
						for i, ok := range valid {
							if !ok {
								require.Equal(t, make([]float32, cols), got[i*cols:(i+1)*cols], "row %d (%s, pos %d) not zero", i, kinds[i], pos[i])
								continue
							}
							want := make([]float32, cols)
							one := index(t, be, pos[i:i+1], []int32{0}, tables[i*maxBlocks:(i+1)*maxBlocks], maxBlocks, maxCtx)
							require.NoError(t, be.Attention(s, cpu.F32(want, 1, cols), q.SliceRows(i, i+1), kv, layer, one, h))
							require.Equal(t, bits(want), bits(got[i*cols:(i+1)*cols]), "row %d", i)
						}
					})
				}
			}
		}
		be.Close()
	}
}

// A prefill chunk (rows of one sequence at consecutive positions, which the CPU scores
// in spans of four) gives what its rows give one at a time, bit for bit, wherever its
// rows sit in the batch.
func TestAttentionChunkRows(t *testing.T) {
	be := cpu.New(cpu.Options{})
	defer be.Close()
	s, _ := be.NewStream()
	r := rand.New(rand.NewPCG(15, 16))
	const heads, kvh, bs, blocks, width = 4, 2, 4, 30, 12
	for _, hd := range []int{8, 12, 48} {
		kv := randomCache(t, be, r, 1, blocks, bs, kvh, hd)
		tables := make([]int32, 2*width)
		for i, b := range r.Perm(blocks)[:2*width] {
			tables[i] = int32(b)
		}
		// Rows 1..10: sequence 0 at 9..18; row 0 and 11: sequence 1 at 30 and 31, and a
		// break in the run at row 6 (position 40 of sequence 1).
		pos := []int32{30, 9, 10, 11, 12, 13, 40, 15, 16, 17, 18, 31}
		seq := []int32{1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1}
		rows, cols := len(pos), heads*hd
		q := cpu.F32(randF32(r, rows*cols, 2), rows, cols)
		h := &backend.AttnHeads{Heads: heads, KVHeads: kvh, HeadDim: hd, Scale: 0.3}
		got := nans(rows * cols)
		require.NoError(t, be.Attention(s, cpu.F32(got, rows, cols), q, kv, 0, index(t, be, pos, seq, tables, width, 48), h))
		for i := range rows {
			want := nans(cols)
			one := index(t, be, pos[i:i+1], seq[i:i+1], tables, width, 48)
			require.NoError(t, be.Attention(s, cpu.F32(want, 1, cols), q.SliceRows(i, i+1), kv, 0, one, h))
			require.Equal(t, bits(want), bits(got[i*cols:(i+1)*cols]), "hd %d row %d", hd, i)
		}
	}
}

// GatherRows gives zeros for rows outside the source.
func TestGatherRows(t *testing.T) {
	be := cpu.New(cpu.Options{})
	defer be.Close()
	s, _ := be.NewStream()
	x := []float32{1, 2, 3, 4, 5, 6}
	got := nans(8)
	require.NoError(t, be.GatherRows(s, cpu.F32(got, 4, 2), cpu.F32(x, 3, 2), i32Tensor(t, be, 1, 4, []int32{2, -1, 0, 3})))
	require.Equal(t, []float32{5, 6, 0, 0, 1, 2, 0, 0}, got)
}

// Ops run concurrently from several lanes share no scratch.
func TestOpsConcurrent(t *testing.T) {
	be := cpu.New(cpu.Options{})
	defer be.Close()
	r := rand.New(rand.NewPCG(9, 10))
	const heads, kvh, hd, bs, blocks, maxBlocks, rows = 6, 2, 48, 5, 40, 8, 7
	kv := randomCache(t, be, r, 1, blocks, bs, kvh, hd)
	kinds := []string{"valid", "bad_neg", "valid", "idle", "valid", "bad_big", "valid"}
	pos, tables, _ := attnRows(r, kinds, bs, blocks, maxBlocks, maxBlocks*bs)
	at := index(t, be, pos, iota(rows), tables, maxBlocks, maxBlocks*bs)
	cols := heads * hd
	q := cpu.F32(randF32(r, rows*cols, 2), rows, cols)
	h := &backend.AttnHeads{Heads: heads, KVHeads: kvh, HeadDim: hd, Scale: 0.125}
	s, _ := be.NewStream()
	want := make([]float32, rows*cols)
	require.NoError(t, be.Attention(s, cpu.F32(want, rows, cols), q, kv, 0, at, h))
	var wg sync.WaitGroup
	outs := make([][]float32, 8)
	errs := make([]error, len(outs))
	for g := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, _ := be.NewStream()
			for range 20 {
				outs[g] = nans(rows * cols)
				if errs[g] = be.Attention(s, cpu.F32(outs[g], rows, cols), q, kv, 0, at, h); errs[g] != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	for g := range outs {
		require.NoError(t, errs[g])
		require.Equal(t, bits(want), bits(outs[g]))
	}
}

func TestIndexOpsAllocateNothing(t *testing.T) {
	be := cpu.New(cpu.Options{Threads: 1})
	defer be.Close()
	s, _ := be.NewStream()
	r := rand.New(rand.NewPCG(11, 12))
	const rows, dim, kvh, hd, bs, blocks = 5, 16, 2, 8, 4, 9
	w := loadTable(t, be, r, 7, dim, false)
	out := cpu.F32(make([]float32, rows*dim), rows, dim)
	ids := i32Tensor(t, be, 1, rows, []int32{0, 6, -1, 7, 3})
	pos := []int32{0, -1, 5, 11, 2}
	at := index(t, be, pos, iota(rows), []int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2, 3, 4, -1}, 3, 12)
	rope := &backend.RoPE{HeadDim: hd, InvFreq: randF32(r, hd/2, 1)}
	kv := randomCache(t, be, r, 1, blocks, bs, kvh, hd)
	k := cpu.F32(randF32(r, rows*kvh*hd, 1), rows, kvh*hd)
	for name, fn := range map[string]func() error{
		"embed":    func() error { return be.Embed(s, out, w, ids) },
		"rope":     func() error { return be.RoPE(s, k, at.Pos, rope) },
		"write kv": func() error { return be.WriteKV(s, kv, 0, k, k, at) },
		"gather":   func() error { return be.GatherRows(s, out, out, ids) },
		"stage":    func() error { _, err := be.Stage(s, pos); return err },
	} {
		require.NoError(t, fn(), name)
		if name == "stage" {
			continue // one small header per pass
		}
		require.Zero(t, testing.AllocsPerRun(10, func() { _ = fn() }), name)
	}
}

func TestIndexShapeErrors(t *testing.T) {
	be := cpu.New(cpu.Options{})
	defer be.Close()
	s, _ := be.NewStream()
	r := rand.New(rand.NewPCG(13, 14))
	const rows, dim, heads, kvh, hd, bs, blocks, maxBlocks = 3, 10, 4, 2, 8, 4, 6, 2
	w := loadTable(t, be, r, 7, dim, false)
	f32 := func(rows, cols int) backend.Tensor { return cpu.F32(make([]float32, rows*cols), rows, cols) }
	i32 := func(rows, cols int) backend.Tensor {
		return i32Tensor(t, be, rows, cols, make([]int32, rows*cols))
	}
	kv := randomCache(t, be, r, 1, blocks, bs, kvh, hd)
	rope := &backend.RoPE{HeadDim: hd, InvFreq: randF32(r, hd/2, 1)}
	h := &backend.AttnHeads{Heads: heads, KVHeads: kvh, HeadDim: hd, Scale: 1}
	out, ids, pos := f32(rows, dim), i32(1, rows), i32(1, rows)
	at := &backend.KVIndex{Pos: pos, Seq: i32(1, rows), Tables: i32(rows, maxBlocks), MaxCtx: 5}
	with := func(f func(x *backend.KVIndex)) *backend.KVIndex {
		x := *at
		f(&x)
		return &x
	}
	q, k := f32(rows, heads*hd), f32(rows, kvh*hd)
	// The valid calls succeed.
	require.NoError(t, be.Embed(s, out, w, ids))
	require.NoError(t, be.RoPE(s, q, pos, rope))
	require.NoError(t, be.WriteKV(s, kv, 0, k, k, at))
	require.NoError(t, be.Attention(s, q, q, kv, 0, at, h))
	require.NoError(t, be.GatherRows(s, out, out, ids))

	odd := *rope
	odd.HeadDim, odd.InvFreq = 3, odd.InvFreq[:1]
	gqa := *h
	gqa.Heads = 3
	for name, fn := range map[string]func() error{
		"embed ids f32":      func() error { return be.Embed(s, out, w, f32(1, rows)) },
		"embed ids two rows": func() error { return be.Embed(s, out, w, i32(2, rows)) },
		"embed ids too many": func() error { return be.Embed(s, out, w, i32(1, rows+1)) },
		"embed out width":    func() error { return be.Embed(s, f32(rows, dim+1), w, ids) },
		"rope pos count":     func() error { return be.RoPE(s, q, i32(1, rows-1), rope) },
		"rope pos f32":       func() error { return be.RoPE(s, q, f32(1, rows), rope) },
		"rope pos column":    func() error { return be.RoPE(s, q, i32(rows, 1), rope) },
		"rope odd head dim":  func() error { return be.RoPE(s, q, pos, &odd) },
		"write kv no index":  func() error { return be.WriteKV(s, kv, 0, k, k, nil) },
		"write kv tables f32": func() error {
			return be.WriteKV(s, kv, 0, k, k, with(func(x *backend.KVIndex) { x.Tables = f32(rows, maxBlocks) }))
		},
		"write kv seq f32": func() error {
			return be.WriteKV(s, kv, 0, k, k, with(func(x *backend.KVIndex) { x.Seq = f32(1, rows) }))
		},
		"write kv pos count": func() error {
			return be.WriteKV(s, kv, 0, k, k, with(func(x *backend.KVIndex) { x.Pos = i32(1, rows+1) }))
		},
		"write kv seq count": func() error {
			return be.WriteKV(s, kv, 0, k, k, with(func(x *backend.KVIndex) { x.Seq = i32(1, rows-1) }))
		},
		"write kv v rows":  func() error { return be.WriteKV(s, kv, 0, k, f32(rows-1, kvh*hd), at) },
		"write kv k width": func() error { return be.WriteKV(s, kv, 0, f32(rows, hd), k, at) },
		"attention tables f32": func() error {
			return be.Attention(s, q, q, kv, 0, with(func(x *backend.KVIndex) { x.Tables = f32(rows, maxBlocks) }), h)
		},
		"attention pos count": func() error {
			return be.Attention(s, q, q, kv, 0, with(func(x *backend.KVIndex) { x.Pos = i32(1, rows-1) }), h)
		},
		"attention out rows":      func() error { return be.Attention(s, f32(rows+1, heads*hd), q, kv, 0, at, h) },
		"attention heads":         func() error { return be.Attention(s, q, q, kv, 0, at, &gqa) },
		"attention max ctx 0":     func() error { return be.Attention(s, q, q, kv, 0, with(func(x *backend.KVIndex) { x.MaxCtx = 0 }), h) },
		"attention without index": func() error { return be.Attention(s, q, q, kv, 0, nil, h) },
		"attention view past data": func() error {
			return be.Attention(s, q, q, kv, 0, with(func(x *backend.KVIndex) { x.Pos.Off += 4 }), h)
		},
		"gather rows count": func() error { return be.GatherRows(s, out, out, i32(1, rows+1)) },
		"gather width":      func() error { return be.GatherRows(s, f32(rows, dim+1), out, ids) },
	} {
		var err error
		require.NotPanics(t, func() { err = fn() }, name)
		require.ErrorIs(t, err, backend.ErrShape, name)
	}
	// Other bad operands are errors too, never panics.
	for name, fn := range map[string]func() error{
		"embed ids not a tensor": func() error { return be.Embed(s, out, w, backend.Tensor{DType: backend.I32, Rows: 1, Cols: rows}) },
		"rope x i32":             func() error { return be.RoPE(s, i32(rows, heads*hd), pos, rope) },
		"write kv layer":         func() error { return be.WriteKV(s, kv, 1, k, k, at) },
		"attention layer":        func() error { return be.Attention(s, q, q, kv, -1, at, h) },
		"attention pos not a tensor": func() error {
			return be.Attention(s, q, q, kv, 0, with(func(x *backend.KVIndex) { x.Pos = backend.Tensor{} }), h)
		},
		"upload as f16":   func() error { return be.Upload(out, make([]byte, 2*out.Len()), backend.F16) },
		"download as i32": func() error { return be.Download(make([]byte, 4*out.Len()), backend.I32, out) },
	} {
		var err error
		require.NotPanics(t, func() { err = fn() }, name)
		require.Error(t, err, name)
	}
}

// The SiLUGLU epilogue gives, bit for bit, MatMul into gate and up then SiLUMul: the
// reference of the fused device kernels.
func TestMatMulSiLUGLU(t *testing.T) {
	be := cpu.New(cpu.Options{})
	defer be.Close()
	s, _ := be.NewStream()
	r := rand.New(rand.NewPCG(17, 18))
	for _, quant := range []bool{false, true} {
		for _, sh := range [][3]int{{1, 5, 3}, {7, 64, 33}, {70, 96, 50}} {
			n, in, h := sh[0], sh[1], sh[2]
			w := loadTable(t, be, r, 2*h, in, quant)
			x := cpu.F32(randF32(r, n*in, 1), n, in)
			gu := make([]float32, n*2*h)
			require.NoError(t, be.MatMul(s, cpu.F32(gu, n, 2*h), x, w, backend.Epilogue{}))
			gate, up := make([]float32, n*h), make([]float32, n*h)
			for i := range n {
				copy(gate[i*h:(i+1)*h], gu[i*2*h:])
				copy(up[i*h:(i+1)*h], gu[i*2*h+h:])
			}
			want := make([]float32, n*h)
			require.NoError(t, be.SiLUMul(s, cpu.F32(want, n, h), cpu.F32(gate, n, h), cpu.F32(up, n, h)))
			got := nans(n * h)
			require.NoError(t, be.MatMul(s, cpu.F32(got, n, h), x, w, backend.Epilogue{SiLUGLU: true}))
			require.Equal(t, bits(want), bits(got), "i8=%v %v", quant, sh)
		}
	}
	w := loadTable(t, be, r, 6, 4, false)
	x := cpu.F32(make([]float32, 8), 2, 4)
	for name, epi := range map[string]backend.Epilogue{"odd width": {SiLUGLU: true}, "with accumulate": {SiLUGLU: true, Accumulate: true}} {
		out := cpu.F32(make([]float32, 8), 2, 4)
		if name == "with accumulate" {
			out = cpu.F32(make([]float32, 6), 2, 3)
		}
		require.ErrorIs(t, be.MatMul(s, out, x, w, epi), backend.ErrShape, name)
	}
}
