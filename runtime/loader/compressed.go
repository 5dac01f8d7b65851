package loader

import (
	"fmt"
	"slices"
	"strings"
)

// Compressed linear layers, as `vireo compress` writes them (runtime/compress; the
// README's format notes). Each of a block's seven matrices (attn_q, attn_k, attn_v,
// attn_output, ffn_gate, ffn_up, ffn_down) is stored in one of three forms; the
// embedding and the classifier are always dense. For the matrix "blk.N.ffn_up.weight"
// [Out][In]:
//
//   - dense: the tensor itself;
//   - low-rank, W ≈ B·A: "blk.N.ffn_up.weight.lowrank_a" [Rank][In] and
//     "blk.N.ffn_up.weight.lowrank_b" [Out][Rank], any float type (or a block type);
//   - 2:4 sparse: "blk.N.ffn_up.weight.sp24" [Out][In/2], the two kept values of each
//     group of 4 inputs in column order (a float type), and
//     "blk.N.ffn_up.weight.sp24_meta" [Out][(In/4+1)/2], GGML type I8: per group a
//     4-bit code, bits 0-1 the column of the first kept value within the group, bits
//     2-3 the second's (first < second), group g in the low nibble of byte g/2 when g
//     is even, the high nibble when odd (runtime/backend/kinds.go).
//
// A file holding compressed matrices carries "vireo.compress.version" (uint32, 1) and
// "vireo.compress.recipe" (the settings, as text). llama.cpp does not read such files:
// it reports the dense tensor missing.
const (
	SuffixLowRankA     = ".lowrank_a"
	SuffixLowRankB     = ".lowrank_b"
	SuffixSparse24     = ".sp24"
	SuffixSparse24Meta = ".sp24_meta"

	KeyCompressVersion = "vireo.compress.version"
	KeyCompressRecipe  = "vireo.compress.recipe"
	CompressVersion    = 1
)

// MatrixForm is how a checkpoint stores one linear matrix.
type MatrixForm int

const (
	FormDense MatrixForm = iota
	FormLowRank
	FormSparse24
)

func (f MatrixForm) String() string {
	switch f {
	case FormLowRank:
		return "low-rank"
	case FormSparse24:
		return "2:4"
	}
	return "dense"
}

// Sparse24MetaCols is the metadata bytes per row of a 2:4 matrix of in inputs.
func Sparse24MetaCols(in int) int { return (in/4 + 1) / 2 }

// compressible reports whether a canonical name is a block matrix that may be stored
// compressed.
func compressible(name string) bool {
	if !strings.HasPrefix(name, "blk.") {
		return false
	}
	for _, m := range []string{".attn_q.weight", ".attn_k.weight", ".attn_v.weight", ".attn_output.weight", ".ffn_gate.weight", ".ffn_up.weight", ".ffn_down.weight"} {
		if strings.HasSuffix(name, m) {
			return true
		}
	}
	return false
}

// Matrix finds the matrix name [out][in] among tensors in one of its forms and checks
// the shapes: exactly one form must be present.
func Matrix(tensors map[string]*Tensor, name string, out, in int) (MatrixForm, error) {
	_, dense := tensors[name]
	a, lrA := tensors[name+SuffixLowRankA]
	b, lrB := tensors[name+SuffixLowRankB]
	v, sp := tensors[name+SuffixSparse24]
	m, spM := tensors[name+SuffixSparse24Meta]
	n := 0
	for _, p := range []bool{dense, lrA || lrB, sp || spM} {
		if p {
			n++
		}
	}
	switch {
	case n == 0:
		return 0, fmt.Errorf("missing tensor %q", name)
	case n > 1 || (!compressible(name) && !dense):
		return 0, fmt.Errorf("tensor %q is stored in more than one form (dense, %s/%s, %s/%s), or compressed where only dense is allowed", name, SuffixLowRankA, SuffixLowRankB, SuffixSparse24, SuffixSparse24Meta)
	case dense:
		if t := tensors[name]; !slices.Equal(t.Shape, []int{out, in}) {
			return 0, fmt.Errorf("tensor %q has shape %v, expected %v from the config", name, t.Shape, []int{out, in})
		}
		return FormDense, nil
	case lrA || lrB:
		if !lrA || !lrB {
			return 0, fmt.Errorf("low-rank matrix %q needs both %s and %s", name, SuffixLowRankA, SuffixLowRankB)
		}
		if len(a.Shape) != 2 || len(b.Shape) != 2 || a.Shape[1] != in || b.Shape[0] != out || a.Shape[0] != b.Shape[1] || a.Shape[0] <= 0 {
			return 0, fmt.Errorf("low-rank matrix %q [%d][%d]: factors A %v and B %v (want [r][%d] and [%d][r])", name, out, in, a.Shape, b.Shape, in, out)
		}
		if a.Type == I8 || b.Type == I8 {
			return 0, fmt.Errorf("low-rank matrix %q: factors of type I8 are not supported", name)
		}
		return FormLowRank, nil
	}
	if !sp || !spM {
		return 0, fmt.Errorf("2:4 matrix %q needs both %s and %s", name, SuffixSparse24, SuffixSparse24Meta)
	}
	switch {
	case in%4 != 0:
		return 0, fmt.Errorf("2:4 matrix %q: %d inputs are not groups of 4", name, in)
	case !slices.Equal(v.Shape, []int{out, in / 2}):
		return 0, fmt.Errorf("2:4 matrix %q: values have shape %v, want %v", name, v.Shape, []int{out, in / 2})
	case !slices.Equal(m.Shape, []int{out, Sparse24MetaCols(in)}) || m.Type != I8:
		return 0, fmt.Errorf("2:4 matrix %q: metadata is %s %v, want I8 %v", name, m.Type, m.Shape, []int{out, Sparse24MetaCols(in)})
	case v.Type == I8:
		return 0, fmt.Errorf("2:4 matrix %q: values of type I8 are not supported", name)
	}
	return FormSparse24, nil
}
