package backend

import "fmt"

// WeightKind is how a linear layer's matrix is stored. Every kind multiplies through the
// same MatMul: out[i][j] (+)= Σ_k x[i][k]·W[j][k] with W the matrix the kind stands for.
type WeightKind uint8

const (
	// Dense is the plain matrix [Out][In], float or int8 with one scale per row.
	Dense WeightKind = iota
	// LowRank is W ≈ B·A, A [Rank][In] and B [Out][Rank] two dense weights (each float
	// or int8 with its own row scales): MatMul runs t = x·Aᵀ into scratch, then
	// out (+)= t·Bᵀ. It reads Rank·(In+Out) weights instead of Out·In.
	LowRank
	// Sparse24 is 2:4 semi-structured sparsity: in every group of 4 consecutive inputs
	// (columns 4g … 4g+3 of a row) at most two weights are non-zero. The backend stores
	// the two kept values of each group ([Out][In/2], float or int8 with one scale per
	// row) and their positions (Meta), and reads half the weights plus 1/16 byte of
	// metadata per weight.
	Sparse24
	// W4A16 is a device backend's own 4-bit form of a GGUF Q4_0 or Q4_K weight
	// (runtime/quant/w4: the same dequantized values): W holds the levels
	// ([Out][In/2] bytes, I8), Scales the group scales (F16: [Out][In/32] for Q4_0,
	// [Out][In/256][2] d and dmin for Q4_K), Meta Q4_K's 6-bit group scales and mins
	// ([Out][In/32][2], I8; absent for Q4_0). A backend makes it in LoadWeight from
	// HostWeight.Blocks; it is never a HostWeight's kind.
	W4A16
)

func (k WeightKind) String() string {
	switch k {
	case Dense:
		return "dense"
	case LowRank:
		return "low-rank"
	case Sparse24:
		return "2:4"
	case W4A16:
		return "w4a16"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// The 2:4 layout (also the checkpoint's, see runtime/compress's doc and the README's
// format notes). Row j of In inputs has In/4 groups; In must be a multiple of 4.
//
//   - values: row j holds In/2 values; v[2g] and v[2g+1] are the kept weights of group g
//     in increasing column order;
//   - metadata: group g has a 4-bit code, bits 0-1 the column (0-3, within the group) of
//     v[2g], bits 2-3 that of v[2g+1], first < second: one of the six codes 0x4 (0,1),
//     0x8 (0,2), 0xC (0,3), 0x9 (1,2), 0xD (1,3), 0xE (2,3). Group g's code is the low
//     nibble of byte g/2 of the row when g is even, the high nibble when odd; a row takes
//     Sparse24MetaStride(In) bytes, and an unused last high nibble is 0.
//
// So the kept value v[l] of a run of 8 groups (32 inputs, 16 values, one 32-bit
// little-endian metadata word m) sits at input 4·(l/2) + ((m >> 2l) & 3): the same
// 2-bit-per-value, low-bits-first order NVIDIA's sparse tensor cores read.

// Sparse24MetaStride is the metadata bytes of one row of in inputs: one nibble per
// group of 4, rounded up to whole bytes.
func Sparse24MetaStride(in int) int { return (in/4 + 1) / 2 }

// sparse24Valid marks the six codes with first < second.
var sparse24Valid = [16]bool{0x4: true, 0x8: true, 0xC: true, 0x9: true, 0xD: true, 0xE: true}

// Sparse24Code is the metadata code of a group keeping columns i0 < i1 (0..3).
func Sparse24Code(i0, i1 int) byte { return byte(i0 | i1<<2) }

// Sparse24Columns are the two columns (within its group) a valid code keeps.
func Sparse24Columns(code byte) (i0, i1 int) { return int(code & 3), int(code>>2) & 3 }

// CheckSparse24Meta reports the first invalid code of rows × in metadata, or nil.
func CheckSparse24Meta(meta []byte, rows, in int) error {
	ms := Sparse24MetaStride(in)
	if len(meta) < rows*ms {
		return fmt.Errorf("%d metadata bytes for %d rows of %d", len(meta), rows, ms)
	}
	groups := in / 4
	for r := 0; r < rows; r++ {
		row := meta[r*ms : (r+1)*ms]
		for g := 0; g < groups; g++ {
			code := row[g/2] >> (4 * (g % 2)) & 0xF
			if !sparse24Valid[code] {
				return fmt.Errorf("row %d group %d: metadata code %#x is not two increasing columns", r, g, code)
			}
		}
		if groups%2 == 1 && row[ms-1]>>4 != 0 {
			return fmt.Errorf("row %d: unused metadata nibble is %#x, not 0", r, row[ms-1]>>4)
		}
	}
	return nil
}

// PackSparse24 packs a dense matrix w [rows][in] with at most two non-zero weights in
// every group of 4 inputs into the 2:4 layout. A group with fewer than two non-zeros
// keeps its lowest zero columns. An error names the first group with three or more.
func PackSparse24(w []float32, rows, in int) (values []float32, meta []byte, err error) {
	if in%4 != 0 {
		return nil, nil, fmt.Errorf("2:4: row length %d is not a multiple of 4", in)
	}
	if len(w) < rows*in {
		return nil, nil, fmt.Errorf("2:4: %d values for [%d][%d]", len(w), rows, in)
	}
	ms := Sparse24MetaStride(in)
	values = make([]float32, rows*in/2)
	meta = make([]byte, rows*ms)
	for r := 0; r < rows; r++ {
		for g := 0; g < in/4; g++ {
			grp := w[r*in+4*g : r*in+4*g+4]
			var keep [2]int
			n := 0
			for i, v := range grp {
				if v != 0 {
					if n == 2 {
						return nil, nil, fmt.Errorf("2:4: row %d group %d (columns %d-%d) has more than two non-zeros", r, g, 4*g, 4*g+3)
					}
					keep[n] = i
					n++
				}
			}
			for i := 0; n < 2 && i < 4; i++ { // fill with zero columns not already kept
				if (n == 0 || keep[0] != i) && grp[i] == 0 {
					keep[n] = i
					n++
				}
			}
			if keep[0] > keep[1] {
				keep[0], keep[1] = keep[1], keep[0]
			}
			values[r*in/2+2*g] = grp[keep[0]]
			values[r*in/2+2*g+1] = grp[keep[1]]
			meta[r*ms+g/2] |= Sparse24Code(keep[0], keep[1]) << (4 * (g % 2))
		}
	}
	return values, meta, nil
}

// ExpandSparse24 returns the dense matrix [rows][in] of 2:4 values (float32, or int8
// whose row scales stay as they are) and metadata: the "masked weights" every 2:4
// kernel must agree with.
func ExpandSparse24[T float32 | int8](values []T, meta []byte, rows, in int) []T {
	ms := Sparse24MetaStride(in)
	w := make([]T, rows*in)
	for r := 0; r < rows; r++ {
		for g := 0; g < in/4; g++ {
			i0, i1 := Sparse24Columns(meta[r*ms+g/2] >> (4 * (g % 2)) & 0xF)
			w[r*in+4*g+i0] = values[r*in/2+2*g]
			w[r*in+4*g+i1] = values[r*in/2+2*g+1]
		}
	}
	return w
}

// DenseFromSparse24 returns the dense form of a 2:4 host weight (the masked matrix, with
// the same row scales for int8): what a backend without 2:4 kernels loads. Other kinds
// come back as they are, with false.
func DenseFromSparse24(h *HostWeight) (*HostWeight, bool) {
	if h.Kind != Sparse24 {
		return h, false
	}
	d := &HostWeight{Name: h.Name, Out: h.Out, In: h.In, Source: h.Source}
	if h.F32 != nil {
		d.F32 = ExpandSparse24(h.F32, h.Meta, h.Out, h.In)
	} else {
		d.I8 = ExpandSparse24(h.I8, h.Meta, h.Out, h.In)
		d.Scales = h.Scales
	}
	return d, true
}

// Rank is a low-rank weight's inner dimension (0 for other kinds).
func (w *Weight) Rank() int {
	if w.Kind != LowRank || w.A == nil {
		return 0
	}
	return w.A.Out
}

// validateKind checks a LowRank or Sparse24 host weight.
func (h *HostWeight) validateKind() error {
	switch {
	case h.Out <= 0 || h.In <= 0:
		return fmt.Errorf("weight %q: bad shape [%d][%d]", h.Name, h.Out, h.In)
	case h.Blocks != nil:
		return fmt.Errorf("weight %q: a %s weight holds no block-quantized data", h.Name, h.Kind)
	}
	switch h.Kind {
	case LowRank:
		switch {
		case h.F32 != nil || h.I8 != nil || h.Meta != nil:
			return fmt.Errorf("weight %q: a low-rank weight carries its data in its factors only", h.Name)
		case h.A == nil || h.B == nil:
			return fmt.Errorf("weight %q: a low-rank weight needs both factors", h.Name)
		case h.A.Kind != Dense || h.B.Kind != Dense:
			return fmt.Errorf("weight %q: low-rank factors must be dense (got %s, %s)", h.Name, h.A.Kind, h.B.Kind)
		case h.A.In != h.In || h.B.Out != h.Out || h.A.Out != h.B.In:
			return fmt.Errorf("weight %q [%d][%d]: factors A [%d][%d] and B [%d][%d] do not make B·A", h.Name, h.Out, h.In, h.A.Out, h.A.In, h.B.Out, h.B.In)
		}
		if err := h.A.Validate(); err != nil {
			return fmt.Errorf("weight %q factor A: %w", h.Name, err)
		}
		if err := h.B.Validate(); err != nil {
			return fmt.Errorf("weight %q factor B: %w", h.Name, err)
		}
		return nil
	case Sparse24:
		n := h.Out * h.In / 2
		switch {
		case h.In%4 != 0:
			return fmt.Errorf("weight %q: 2:4 needs inputs in groups of 4, got %d", h.Name, h.In)
		case h.A != nil || h.B != nil:
			return fmt.Errorf("weight %q: a 2:4 weight has no factors", h.Name)
		case (h.F32 == nil) == (h.I8 == nil):
			return fmt.Errorf("weight %q: need exactly one of f32 or i8 values", h.Name)
		case h.F32 != nil && len(h.F32) < n:
			return fmt.Errorf("weight %q: %d floats for 2:4 [%d][%d] (want %d kept values)", h.Name, len(h.F32), h.Out, h.In, n)
		case h.I8 != nil && (len(h.I8) < n || len(h.Scales) < h.Out):
			return fmt.Errorf("weight %q: %d int8 values and %d scales for 2:4 [%d][%d]", h.Name, len(h.I8), len(h.Scales), h.Out, h.In)
		}
		if err := CheckSparse24Meta(h.Meta, h.Out, h.In); err != nil {
			return fmt.Errorf("weight %q: 2:4 metadata: %w", h.Name, err)
		}
		return nil
	}
	return fmt.Errorf("weight %q: unknown kind %d", h.Name, h.Kind)
}
