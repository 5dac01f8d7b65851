package quantize

import (
	"fmt"
	"sort"
	"strings"

	"github.com/vireo-ai/vireo/runtime/quant/ggml"
)

// Target is what --type names: a tensor type for every quantizable matrix (f16, q8_0,
// q6_k, …) or one of llama.cpp's mixes (q4_k_m, …), whose base type some tensors trade
// for a neighbour as llama-quantize does.
type Target struct {
	Name     string    // as given to --type: "q4_k_m"
	FileType uint32    // general.file_type (llama.cpp's llama_ftype)
	Base     ggml.Type // the type of most matrices
	mix      mix
}

// mix names llama.cpp's choice rules; plain types have none.
type mix int

const (
	plain mix = iota
	mixQ2K
	mixQ3KM
	mixQ4KS
	mixQ4KM
	mixQ5KS
	mixQ5KM
)

var targets = []Target{
	{"f32", 0, ggml.F32, plain},
	{"f16", 1, ggml.F16, plain},
	{"bf16", 32, ggml.BF16, plain},
	{"q8_0", 7, ggml.Q8_0, plain},
	{"q4_0", 2, ggml.Q4_0, plain},
	{"q4_1", 3, ggml.Q4_1, plain},
	{"q5_0", 8, ggml.Q5_0, plain},
	{"q5_1", 9, ggml.Q5_1, plain},
	{"q2_k", 10, ggml.Q2_K, mixQ2K},
	{"q3_k_m", 12, ggml.Q3_K, mixQ3KM},
	{"q4_k_s", 14, ggml.Q4_K, mixQ4KS},
	{"q4_k_m", 15, ggml.Q4_K, mixQ4KM},
	{"q5_k_s", 16, ggml.Q5_K, mixQ5KS},
	{"q5_k_m", 17, ggml.Q5_K, mixQ5KM},
	{"q6_k", 18, ggml.Q6_K, plain},
}

// TargetNames lists what --type accepts.
func TargetNames() []string {
	var s []string
	for _, t := range targets {
		s = append(s, t.Name)
	}
	return s
}

// ParseTarget reads a --type value (case-insensitive: "Q4_K_M" is q4_k_m).
func ParseTarget(s string) (Target, error) {
	for _, t := range targets {
		if strings.EqualFold(t.Name, s) {
			return t, nil
		}
	}
	return Target{}, fmt.Errorf("unknown type %q (one of %s)", s, strings.Join(TargetNames(), ", "))
}

// tensorInfo is what the choice of a tensor's type looks at.
type tensorInfo struct {
	name  string
	shape []int     // outermost first; the row length is the last dimension
	typ   ggml.Type // the type it has in the input
}

// layerOf is the N of "blk.N.", -1 for tensors outside the layers.
func layerOf(name string) int {
	var l int
	if _, err := fmt.Sscanf(name, "blk.%d.", &l); err != nil {
		return -1
	}
	return l
}

// sortLikeLlamaCpp orders tensors as llama-quantize processes and writes them: by layer
// (tensors outside the layers first), then by name. Its per-layer counters follow this
// order.
func sortLikeLlamaCpp(ts []tensorInfo) {
	sort.SliceStable(ts, func(a, b int) bool {
		la, lb := layerOf(ts[a].name), layerOf(ts[b].name)
		if la != lb {
			return la < lb
		}
		return ts[a].name < ts[b].name
	})
}

// category is llama.cpp's tensor category (tensor_get_category) for the names a Llama
// GGUF has.
type category int

const (
	catOther category = iota
	catTokenEmbd
	catOutput
	catAttnQ
	catAttnK
	catAttnV
	catAttnOutput
	catFFNUp
	catFFNGate
	catFFNDown
)

func categoryOf(name string) category {
	switch {
	case name == "output.weight":
		return catOutput
	case name == "token_embd.weight":
		return catTokenEmbd
	case strings.Contains(name, "attn_v.weight"):
		return catAttnV
	case strings.Contains(name, "attn_k.weight"):
		return catAttnK
	case strings.Contains(name, "attn_q.weight"):
		return catAttnQ
	case strings.Contains(name, "attn_output.weight"):
		return catAttnOutput
	case strings.Contains(name, "ffn_up"):
		return catFFNUp
	case strings.Contains(name, "ffn_gate"):
		return catFFNGate
	case strings.Contains(name, "ffn_down"):
		return catFFNDown
	}
	return catOther
}

// quantizable is llama.cpp's tensor_allows_quantization for a Llama model: matrices
// named *weight, except norms (and expert gates, which Llama does not have).
func quantizable(t tensorInfo) bool {
	return len(t.shape) >= 2 && strings.HasSuffix(t.name, "weight") &&
		!strings.Contains(t.name, "_norm.weight") && !strings.Contains(t.name, "ffn_gate_inp.weight")
}

// hparams are the model facts llama.cpp's rules read.
type hparams struct {
	layers, heads, kvHeads int
}

// chooseTypes picks every tensor's output type as llama-quantize does for a Llama model
// without an importance matrix (llama_tensor_get_type): tensors it does not quantize
// keep their type; with pure, every quantizable matrix gets the base type; otherwise
// the mix's rules trade some for neighbours; then a row length that is not a whole
// number of blocks falls back to a type whose blocks fit (F16 where llama.cpp defines
// none, with f16Fallback). ts must be in sortLikeLlamaCpp's order.
func chooseTypes(ts []tensorInfo, tg Target, hp hparams, pure, f16Fallback bool) ([]ggml.Type, error) {
	nAttnV, tied := 0, true
	for _, t := range ts {
		switch categoryOf(t.name) {
		case catAttnV:
			nAttnV++
		case catOutput:
			tied = false
		}
	}
	nGQA := 1
	if hp.kvHeads > 0 {
		nGQA = hp.heads / hp.kvHeads
	}
	is70B := hp.layers == 80 && hp.heads != hp.kvHeads // llama.cpp's LLM_TYPE_70B for Llama
	useMoreBits := func(i, n int) bool { return i < n/8 || i >= 7*n/8 || (i-n/8)%3 == 2 }
	iAttnV, iFFNDown := 0, 0
	out := make([]ggml.Type, len(ts))
	for k, t := range ts {
		if !quantizable(t) {
			out[k] = t.typ
			continue
		}
		typ := tg.Base
		if !tg.Base.Quantized() {
			out[k] = typ // f32, f16, bf16: no mix rules, no fallback
			continue
		}
		cat := categoryOf(t.name)
		cols := t.shape[len(t.shape)-1]
		if !pure {
			switch {
			case cat == catOutput || (tied && cat == catTokenEmbd):
				if cols%typ.BlockSize() != 0 {
					typ = ggml.Q8_0
				} else if typ != ggml.Q8_0 {
					typ = ggml.Q6_K
				}
			case cat == catTokenEmbd:
				// Unchanged for these mixes.
			case cat == catAttnV:
				switch {
				case tg.mix == mixQ2K:
					typ = ggml.Q3_K
					if nGQA >= 4 {
						typ = ggml.Q4_K
					}
				case tg.mix == mixQ3KM:
					typ = ggml.Q4_K
					if iAttnV < 2 {
						typ = ggml.Q5_K
					}
				case (tg.mix == mixQ4KM || tg.mix == mixQ5KM) && useMoreBits(iAttnV, nAttnV):
					typ = ggml.Q6_K
				case tg.mix == mixQ4KS && iAttnV < 4:
					typ = ggml.Q5_K
				}
				if is70B && (typ == ggml.Q3_K || typ == ggml.Q4_K) {
					typ = ggml.Q5_K
				}
				iAttnV++
			case cat == catFFNDown:
				i, n := iFFNDown, hp.layers
				switch {
				case tg.mix == mixQ2K:
					typ = ggml.Q3_K
				case tg.mix == mixQ3KM:
					typ = ggml.Q4_K
					if i < n/16 {
						typ = ggml.Q5_K
					}
				case tg.mix == mixQ4KM:
					if useMoreBits(i, n) {
						typ = ggml.Q6_K
					}
				case tg.mix == mixQ5KM && useMoreBits(i, n):
					typ = ggml.Q6_K
				case tg.mix == mixQ4KS && i < n/8:
					typ = ggml.Q5_K
				}
				iFFNDown++
			case cat == catAttnOutput:
				switch tg.mix {
				case mixQ2K:
					typ = ggml.Q3_K
				case mixQ3KM:
					typ = ggml.Q4_K
				}
			}
		}
		var err error
		if typ, err = fallback(t.name, cols, typ, f16Fallback); err != nil {
			return nil, err
		}
		out[k] = typ
	}
	return out, nil
}

// fallback is llama.cpp's tensor_type_fallback: a row length that is not a whole number
// of the type's blocks takes a type with blocks of 32 (Q2_K and Q3_K become Q4_0, as
// current llama.cpp does; older versions wrote IQ4_NL, which Vireo does not implement),
// and F16 when even those do not fit. For the other types llama.cpp defines no fallback
// and refuses; with f16 they fall back to F16 too (a Vireo extension).
func fallback(name string, cols int, typ ggml.Type, f16 bool) (ggml.Type, error) {
	if cols%typ.BlockSize() == 0 {
		return typ, nil
	}
	var alt ggml.Type
	switch typ {
	case ggml.Q2_K, ggml.Q3_K:
		alt = ggml.Q4_0
	case ggml.Q4_K:
		alt = ggml.Q5_0
	case ggml.Q5_K:
		alt = ggml.Q5_1
	case ggml.Q6_K:
		alt = ggml.Q8_0
	default:
		if f16 {
			return ggml.F16, nil
		}
		return 0, fmt.Errorf("tensor %q: rows of %d values are not a whole number of %s blocks of %d, and llama.cpp defines no fallback for %s (--f16-fallback keeps such tensors F16)",
			name, cols, typ, typ.BlockSize(), typ)
	}
	if cols%alt.BlockSize() != 0 {
		alt = ggml.F16
	}
	return alt, nil
}
