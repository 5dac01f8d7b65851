package kmodel

import (
	"fmt"
	"math"
)

// The prefill kernel (attention2_prefill.cuh: attn_prefill), emulated a warp at a time:
// shared memory as float32 values of the 16-bit type, cp.async chunks, ldmatrix
// (.x4, plain and .trans) by the row addresses the lanes give, mma.m16n8k16 by its
// fragment layout, the quad shuffles of the online softmax. A layout bug (a wrong
// address, a swapped fragment register, a missed .trans) gives wrong values or reads of
// unwritten shared memory (NaN), which the tests catch.

// prefillLD is prefill_ld: the shared row stride in elements.
func prefillLD(hd int) int { return hd + 8 }

// pair is a 32-bit register holding two 16-bit values.
type pair [2]float32

// smem is a block's shared memory in elements; NaN where nothing was copied.
type smem []float32

func newSmem(n int) smem {
	s := make(smem, n)
	for i := range s {
		s[i] = float32(math.NaN())
	}
	return s
}

// ldsmX4 models ldmatrix.sync.aligned.m8n8.x4(.trans).shared.b16: addr[i] is the
// element index lane i gives (row i%8 of matrix i/8); lane L gets, of matrix mi,
// row L/4 columns 2(L%4), +1 (trans: rows 2(L%4), +1 of column L/4).
func ldsmX4(s smem, addr [32]int, trans bool) (r [32][4]pair) {
	for L := 0; L < 32; L++ {
		g, t := L/4, L%4
		for mi := 0; mi < 4; mi++ {
			if !trans {
				a := addr[8*mi+g]
				r[L][mi] = pair{s[a+2*t], s[a+2*t+1]}
			} else {
				r[L][mi] = pair{s[addr[8*mi+2*t]+g], s[addr[8*mi+2*t+1]+g]}
			}
		}
	}
	return r
}

// mma16816 models mma.sync.aligned.m16n8k16.row.col.f32 (f16 or bf16 inputs): c += a·b
// over the warp's fragments (a: 4 pairs, b: 2 pairs, c: 4 floats per lane).
func mma16816(c *[32][4]float32, a *[32][4]pair, b *[32][2]pair) {
	var A [16][16]float32
	var B [16][8]float32
	for L := 0; L < 32; L++ {
		g, t := L/4, L%4
		for e := 0; e < 2; e++ {
			A[g][2*t+e] = a[L][0][e]
			A[g+8][2*t+e] = a[L][1][e]
			A[g][2*t+8+e] = a[L][2][e]
			A[g+8][2*t+8+e] = a[L][3][e]
			B[2*t+e][g] = b[L][0][e]
			B[2*t+8+e][g] = b[L][1][e]
		}
	}
	for L := 0; L < 32; L++ {
		g, t := L/4, L%4
		for e := 0; e < 4; e++ {
			row, col := g+8*(e/2), 2*t+e%2
			sum := float64(c[L][e])
			for k := 0; k < 16; k++ {
				sum += float64(A[row][k]) * float64(B[k][col])
			}
			c[L][e] = float32(sum)
		}
	}
}

// round16 rounds to the 16-bit activation type (round to nearest even).
func round16(v float32, bf16 bool) float32 {
	if v != v || math.IsInf(float64(v), 0) {
		return v
	}
	if bf16 {
		b := math.Float32bits(v)
		b += 0x7fff + (b>>16)&1
		return math.Float32frombits(b &^ 0xffff)
	}
	// fp16: 11 significant bits; below 2^-14 a fixed quantum of 2^-24.
	a := math.Abs(float64(v))
	if a >= 65520 {
		return float32(math.Copysign(math.Inf(1), float64(v)))
	}
	e := math.Max(math.Floor(math.Log2(a)), -14)
	q := math.Exp2(e - 10)
	return float32(math.RoundToEven(float64(v)/q) * q)
}

// prefillBlock models attn_prefill for query tile `tile` and head h.
func (c Attn2Config) prefillBlock(p *AttnProblem, tiles []Tile, tile, h int, out []float32, tr *AttnTrace) {
	HD, BM, BN := p.HeadDim, c.BM, c.BN
	LD := prefillLD(HD)
	KS, NT, DT := HD/16, BN/8, HD/8
	threads := BM * 2
	warps := BM / 16
	plan := tiles[tile]
	r0, n := tile*BM, min(BM, p.Rows-tile*BM)
	kvh := h / (p.Heads / p.KVHeads)
	_, boff, _ := p.rowCtx(r0)
	who := fmt.Sprintf("p/%d/%d", tile, h)
	for i := 0; i < n; i++ {
		tr.RowKernel[r0+i] = 'p'
	}
	sq := newSmem(BM * LD)
	sk := newSmem(2 * BN * LD)
	sv := newSmem(2 * BN * LD)

	// load_tile: chunk c = tid + i·threads is row c/(HD/8), columns (c%(HD/8))·8.
	cpr := HD / 8
	load := func(dst smem, off, rows int, src func(row int) (base int, ok bool), from []float32, reads map[string]map[int]int) {
		for tid := 0; tid < threads; tid++ {
			for ch := tid; ch < rows*cpr; ch += threads {
				row, col := ch/cpr, ch%cpr*8
				base, ok := src(row)
				for e := 0; e < 8; e++ {
					v := float32(0)
					if ok {
						v = from[base+col+e]
						if reads != nil {
							tr.read(reads, who, base+col+e)
						}
					}
					dst[off+row*LD+col+e] = v
				}
			}
		}
	}
	kvSrc := func(kb int) func(row int) (int, bool) {
		return func(row int) (int, bool) {
			pp := kb + row
			if pp >= plan.MaxCtx {
				return 0, false
			}
			blk := int(p.Tables[boff+pp/p.BlockSize])
			return ((blk*p.KVHeads+kvh)*p.BlockSize + pp%p.BlockSize) * HD, true
		}
	}
	load(sq, 0, BM, func(row int) (int, bool) { return (r0+row)*p.LdQ + h*HD, row < n }, p.Q, nil)
	nkv := (plan.MaxCtx + BN - 1) / BN
	if c.Fault == Attn2FaultDrop && nkv > 1 {
		nkv--
	}
	load(sk, 0, BN, kvSrc(0), p.K, tr.ReadK)
	load(sv, 0, BN, kvSrc(0), p.V, tr.ReadV)

	// Per warp, per lane state.
	type warpState struct {
		qa   [][32][4]pair // [KS]
		o    [][32][4]float32
		m, l [32][2]float32
		ctx  [32][2]int
	}
	ws := make([]warpState, warps)
	for w := range ws {
		st := &ws[w]
		st.qa = make([][32][4]pair, KS)
		st.o = make([][32][4]float32, DT)
		for L := 0; L < 32; L++ {
			g := L / 4
			for i := 0; i < 2; i++ {
				st.m[L][i] = float32(math.Inf(-1))
				rr := 16*w + g + 8*i
				if rr < n {
					ctx, _, _ := p.rowCtx(r0 + rr)
					st.ctx[L][i] = ctx
				}
			}
		}
	}
	scale := p.Scale * float32(math.Log2E)
	for j := 0; j < nkv; j++ {
		stg := j & 1
		if j+1 < nkv {
			load(sk, (stg^1)*BN*LD, BN, kvSrc((j+1)*BN), p.K, tr.ReadK)
			load(sv, (stg^1)*BN*LD, BN, kvSrc((j+1)*BN), p.V, tr.ReadV)
		}
		kt, vt := stg*BN*LD, stg*BN*LD
		kb := j * BN
		full := kb+BN <= plan.MinCtx
		for w := 0; w < warps; w++ {
			st := &ws[w]
			if j == 0 {
				for ks := 0; ks < KS; ks++ {
					var addr [32]int
					for L := 0; L < 32; L++ {
						addr[L] = (16*w+L&15)*LD + ks*16 + (L>>4)*8
					}
					st.qa[ks] = ldsmX4(sq, addr, false)
				}
			}
			s := make([][32][4]float32, NT)
			for nt := 0; nt < NT; nt++ {
				for ks := 0; ks < KS; ks += 2 {
					var addr [32]int
					for L := 0; L < 32; L++ {
						mi := L >> 3
						addr[L] = kt + (nt*8+L&7)*LD + (ks+mi>>1)*16 + (mi&1)*8
					}
					r := ldsmX4(sk, addr, false)
					var b0, b1 [32][2]pair
					for L := 0; L < 32; L++ {
						b0[L] = [2]pair{r[L][0], r[L][1]}
						b1[L] = [2]pair{r[L][2], r[L][3]}
					}
					mma16816(&s[nt], &st.qa[ks], &b0)
					mma16816(&s[nt], &st.qa[ks+1], &b1)
				}
			}
			// Scale, mask, online softmax; quads reduce by xor 1 and 2.
			for i := 0; i < 2; i++ {
				var mx [32]float32
				for L := 0; L < 32; L++ {
					t := L % 4
					mx[L] = st.m[L][i]
					for nt := 0; nt < NT; nt++ {
						for cc := 0; cc < 2; cc++ {
							v := s[nt][L][2*i+cc] * scale
							if !full && kb+nt*8+2*t+cc >= st.ctx[L][i] {
								v = float32(math.Inf(-1))
							}
							s[nt][L][2*i+cc] = v
							mx[L] = max(mx[L], v)
						}
					}
				}
				mx = quadMax(mx)
				for L := 0; L < 32; L++ {
					base := mx[L]
					if math.IsInf(float64(base), -1) {
						base = 0
					}
					corr := float32(math.Exp2(float64(st.m[L][i] - base)))
					st.m[L][i] = mx[L]
					var sum float32
					for nt := 0; nt < NT; nt++ {
						for cc := 0; cc < 2; cc++ {
							v := float32(math.Exp2(float64(s[nt][L][2*i+cc] - base)))
							s[nt][L][2*i+cc] = v
							sum += v
						}
					}
					st.l[L][i] = st.l[L][i]*corr + sum
					for d := 0; d < DT; d++ {
						st.o[d][L][2*i] *= corr
						st.o[d][L][2*i+1] *= corr
					}
				}
			}
			// O += P·V.
			for kk := 0; kk < BN/16; kk++ {
				var pa [32][4]pair
				for L := 0; L < 32; L++ {
					rd := func(v float32) float32 { return round16(v, p.BF16) }
					pa[L][0] = pair{rd(s[2*kk][L][0]), rd(s[2*kk][L][1])}
					pa[L][1] = pair{rd(s[2*kk][L][2]), rd(s[2*kk][L][3])}
					pa[L][2] = pair{rd(s[2*kk+1][L][0]), rd(s[2*kk+1][L][1])}
					pa[L][3] = pair{rd(s[2*kk+1][L][2]), rd(s[2*kk+1][L][3])}
				}
				for dt := 0; dt < DT; dt += 2 {
					var addr [32]int
					for L := 0; L < 32; L++ {
						mi := L >> 3
						addr[L] = vt + (kk*16+(mi&1)*8+L&7)*LD + (dt+mi>>1)*8
					}
					r := ldsmX4(sv, addr, true)
					var b0, b1 [32][2]pair
					for L := 0; L < 32; L++ {
						b0[L] = [2]pair{r[L][0], r[L][1]}
						b1[L] = [2]pair{r[L][2], r[L][3]}
					}
					mma16816(&st.o[dt], &pa, &b0)
					mma16816(&st.o[dt+1], &pa, &b1)
				}
			}
		}
	}
	// O / l, rows g and g+8, column pairs.
	for w := 0; w < warps; w++ {
		st := &ws[w]
		for i := 0; i < 2; i++ {
			var li [32]float32
			for L := 0; L < 32; L++ {
				li[L] = st.l[L][i]
			}
			li = quadSum(li)
			for L := 0; L < 32; L++ {
				g, t := L/4, L%4
				rr := 16*w + g + 8*i
				if rr >= n {
					continue
				}
				inv := float32(0)
				if li[L] > 0 {
					inv = 1 / li[L]
				}
				for d := 0; d < DT; d++ {
					for e := 0; e < 2; e++ {
						idx := (r0+rr)*p.LdOut + h*HD + d*8 + 2*t + e
						out[idx] = round16(st.o[d][L][2*i+e]*inv, p.BF16)
						tr.Writes[idx]++
					}
				}
			}
		}
	}
}

// quadMax and quadSum: the xor-1, xor-2 shuffle reductions of a quad of lanes.
func quadMax(v [32]float32) [32]float32 {
	for _, o := range []int{1, 2} {
		var n [32]float32
		for L := range v {
			n[L] = max(v[L], v[L^o])
		}
		v = n
	}
	return v
}

func quadSum(v [32]float32) [32]float32 {
	for _, o := range []int{1, 2} {
		var n [32]float32
		for L := range v {
			n[L] = v[L] + v[L^o]
		}
		v = n
	}
	return v
}
