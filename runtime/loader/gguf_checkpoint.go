package loader

import (
	"fmt"
	"math"
	"reflect"

	"github.com/vireo-ai/vireo/runtime/tokenizer"
)

// LoadGGUF builds a Checkpoint from a GGUF file held in data (tensor Data aliases it):
// architecture "llama", a "llama" (SentencePiece) vocabulary, and every tensor the
// configuration implies with the right shape. Tensors beyond the canonical ones (such as
// rope_freqs.weight) are kept in Tensors as they are.
func LoadGGUF(data []byte) (*Checkpoint, error) {
	g, err := ParseGGUF(data)
	if err != nil {
		return nil, err
	}
	return checkpointFromGGUF(g)
}

func checkpointFromGGUF(g *GGUFFile) (*Checkpoint, error) {
	m := meta{g}
	arch, err := m.str("general.architecture", true)
	if err != nil {
		return nil, err
	}
	if arch != "llama" {
		return nil, fmt.Errorf("architecture %q not supported (only \"llama\")", arch)
	}
	c := Config{Arch: arch, RopeStyle: RopePairs}
	p := arch + "."
	for _, f := range []struct {
		key string
		dst *int
	}{
		{"embedding_length", &c.Dim}, {"feed_forward_length", &c.HiddenDim}, {"block_count", &c.Layers},
		{"attention.head_count", &c.Heads}, {"context_length", &c.MaxSeqLen},
	} {
		if *f.dst, _, err = m.int(p+f.key, true); err != nil {
			return nil, err
		}
	}
	var ok bool
	if c.KVHeads, ok, err = m.int(p+"attention.head_count_kv", false); err != nil {
		return nil, err
	} else if !ok {
		c.KVHeads = c.Heads
	}
	if c.HeadDim, ok, err = m.int(p+"attention.key_length", false); err != nil {
		return nil, err
	} else if !ok {
		if c.Heads <= 0 || c.Dim%c.Heads != 0 {
			return nil, fmt.Errorf("implausible config: head_count %d does not divide embedding_length %d", c.Heads, c.Dim)
		}
		c.HeadDim = c.Dim / c.Heads
	}
	if rd, ok, err := m.int(p+"rope.dimension_count", false); err != nil {
		return nil, err
	} else if ok && rd != c.HeadDim {
		return nil, fmt.Errorf("%srope.dimension_count %d differs from the head dimension %d: partial RoPE not supported", p, rd, c.HeadDim)
	}
	if vl, ok, err := m.int(p+"attention.value_length", false); err != nil {
		return nil, err
	} else if ok && vl != c.HeadDim {
		return nil, fmt.Errorf("%sattention.value_length %d differs from the key length %d: not supported", p, vl, c.HeadDim)
	}
	theta, ok, err := m.float(p+"rope.freq_base", false)
	if err != nil {
		return nil, err
	}
	if !ok {
		theta = 10000
	}
	c.RopeTheta = float32(theta)
	if err := ggufRopeScaling(m, p); err != nil {
		return nil, err
	}
	eps, ok, err := m.float(p+"attention.layer_norm_rms_epsilon", false)
	if err != nil {
		return nil, err
	}
	if !ok {
		eps = 1e-5
	}
	c.NormEps = float32(eps)

	emb := g.Tensor("token_embd.weight")
	if emb == nil {
		return nil, fmt.Errorf("missing tensor %q", "token_embd.weight")
	}
	vocabKey := p + "vocab_size"
	if c.VocabSize, ok, err = m.int(vocabKey, false); err != nil {
		return nil, err
	} else if !ok {
		c.VocabSize = emb.Shape[0] // the tokenizer is checked against the model below
	}
	c.TiedEmbeddings = g.Tensor("output.weight") == nil
	if err := c.validate(); err != nil {
		return nil, err
	}
	if err := checkTensors(c, g.byName); err != nil {
		return nil, err
	}
	if c.RopeFreqFactors, err = ggufRopeFreqs(g, c.HeadDim); err != nil {
		return nil, err
	}
	if st, _ := m.str(p+"rope.scaling.type", false); st == "llama3" && c.RopeFreqFactors == nil {
		return nil, fmt.Errorf("%srope.scaling.type \"llama3\" without a %s tensor: the file does not carry the scaled frequencies", p, ropeFreqsTensor)
	}
	v, err := ggufVocab(m, c.VocabSize)
	if err != nil {
		return nil, err
	}
	tmpl, err := m.str("tokenizer.chat_template", false)
	if err != nil {
		return nil, err
	}
	return &Checkpoint{Format: "gguf", Config: c, Tensors: g.byName, Vocab: v, ChatTemplate: tmpl, GGUF: g}, nil
}

// ropeFreqsTensor is llama.cpp's encoding of Llama 3 RoPE scaling: one factor per
// rotated pair, dividing its frequency.
const ropeFreqsTensor = "rope_freqs.weight"

// ggufRopeScaling accepts the RoPE scaling keys that mean "none" (type "none", a linear
// factor of 1) and Llama 3 scaling (carried by the rope_freqs tensor, checked by the
// caller), and refuses the others by name: linear scaling by another factor, YaRN,
// LongRoPE.
func ggufRopeScaling(m meta, p string) error {
	st, err := m.str(p+"rope.scaling.type", false)
	if err != nil {
		return err
	}
	factor, hasFactor, err := m.float(p+"rope.scaling.factor", false)
	if err != nil {
		return err
	}
	if lin, ok, err := m.float(p+"rope.scale_linear", false); err != nil {
		return err
	} else if ok && lin != 1 {
		return fmt.Errorf("%srope.scale_linear %g: linear RoPE scaling not supported", p, lin)
	}
	switch st {
	case "", "none", "llama3":
	case "linear":
		if hasFactor && factor != 1 {
			return fmt.Errorf("%srope.scaling.type \"linear\" with factor %g: linear RoPE scaling not supported", p, factor)
		}
	default:
		return fmt.Errorf("%srope.scaling.type %q not supported (only Llama 3 scaling, via %s)", p, st, ropeFreqsTensor)
	}
	return nil
}

// ggufRopeFreqs reads the rope_freqs tensor (nil when absent): headDim/2 positive,
// finite factors.
func ggufRopeFreqs(g *GGUFFile, headDim int) ([]float32, error) {
	t := g.Tensor(ropeFreqsTensor)
	if t == nil {
		return nil, nil
	}
	if t.NumElements() != headDim/2 || len(t.Shape) != 1 {
		return nil, fmt.Errorf("tensor %q has shape %v, expected [%d] (head_dim/2)", ropeFreqsTensor, t.Shape, headDim/2)
	}
	f, err := t.Float32()
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(f))
	for i, x := range f {
		if !(x > 0) || math.IsInf(float64(x), 0) {
			return nil, fmt.Errorf("tensor %q: factor %d is %g (must be positive and finite)", ropeFreqsTensor, i, x)
		}
		out[i] = x
	}
	return out, nil
}

// ggufVocab reads the tokenizer.ggml.* keys into a Vocab of the model's size: model
// "llama" (SentencePiece-style BPE) or "gpt2" (byte-level BPE with tokenizer.ggml.merges
// and tokenizer.ggml.pre).
func ggufVocab(m meta, vocabSize int) (*tokenizer.Vocab, error) {
	model, err := m.str("tokenizer.ggml.model", true)
	if err != nil {
		return nil, err
	}
	if model != "llama" && model != "gpt2" {
		return nil, fmt.Errorf("tokenizer model %q not supported (only \"llama\", SentencePiece-style BPE, and \"gpt2\", byte-level BPE)", model)
	}
	gpt2 := model == "gpt2"
	toks, ok := m.g.Metadata["tokenizer.ggml.tokens"].([]string)
	if !ok {
		return nil, fmt.Errorf("metadata %q is missing or not an array of strings", "tokenizer.ggml.tokens")
	}
	if len(toks) != vocabSize {
		return nil, fmt.Errorf("vocabulary has %d tokens but the model expects %d", len(toks), vocabSize)
	}
	v := &tokenizer.Vocab{Model: model, Tokens: toks}
	if s, ok := m.g.Metadata["tokenizer.ggml.scores"]; ok {
		sc, ok := s.([]float32)
		if !ok || len(sc) != len(toks) {
			return nil, fmt.Errorf("metadata %q must be %d float32, got %s", "tokenizer.ggml.scores", len(toks), describeArray(s))
		}
		v.Scores = sc
	} else if !gpt2 {
		v.Scores = make([]float32, len(toks))
	}
	if gpt2 {
		merges, ok := m.g.Metadata["tokenizer.ggml.merges"].([]string)
		if !ok {
			return nil, fmt.Errorf("metadata %q is %s, want an array of strings (a \"gpt2\" vocabulary needs its merges)", "tokenizer.ggml.merges", describeArray(m.g.Metadata["tokenizer.ggml.merges"]))
		}
		v.Merges = merges
		if v.Pre, err = m.str("tokenizer.ggml.pre", false); err != nil {
			return nil, err
		}
	}
	if s, ok := m.g.Metadata["tokenizer.ggml.token_type"]; ok {
		tt, ok := s.([]int32)
		if !ok || len(tt) != len(toks) {
			return nil, fmt.Errorf("metadata %q must be %d int32, got %s", "tokenizer.ggml.token_type", len(toks), describeArray(s))
		}
		v.Types = make([]tokenizer.TokenType, len(tt))
		for i, t := range tt {
			v.Types[i] = tokenizer.TokenType(t)
		}
	}
	// Defaults are llama.cpp's for SentencePiece vocabularies.
	for _, f := range []struct {
		key string
		dst *int32
		def int
	}{{"bos_token_id", &v.BOS, 1}, {"eos_token_id", &v.EOS, 2}, {"unknown_token_id", &v.UNK, 0}, {"eot_token_id", nil, -1}, {"eom_token_id", nil, -1}} {
		key := "tokenizer.ggml." + f.key
		raw, present := m.g.Metadata[key]
		id, isInt := asInt(raw)
		switch {
		case !present && (gpt2 || f.def < 0):
			id = -1 // byte-level vocabularies have no conventional ids
		case !present:
			id = int64(f.def)
			if id >= int64(len(toks)) {
				id = -1
			}
		case !isInt:
			return nil, fmt.Errorf("metadata %q is %s, want an integer", key, describe(raw))
		case id == math.MaxUint32 || id == -1:
			id = -1 // "none", as converters write it
		case id < 0 || id >= int64(len(toks)):
			return nil, fmt.Errorf("metadata %q: token id %d is outside the vocabulary of %d", key, id, len(toks))
		}
		if f.dst == nil { // end of turn, end of message: also end generation
			if id >= 0 {
				v.EOSIDs = append(v.EOSIDs, int32(id))
			}
			continue
		}
		*f.dst = int32(id)
	}
	// llama.cpp's defaults: SentencePiece vocabularies add BOS and the dummy prefix;
	// byte-level ones neither, except Llama 3's, which adds BOS.
	addBOS := !gpt2 || v.Pre == "llama-bpe" || v.Pre == "llama3" || v.Pre == "llama-v3"
	if v.AddBOS, err = m.boolean("tokenizer.ggml.add_bos_token", addBOS); err != nil {
		return nil, err
	}
	if v.AddSpacePrefix, err = m.boolean("tokenizer.ggml.add_space_prefix", !gpt2); err != nil {
		return nil, err
	}
	return v, nil
}

// meta reads typed metadata values with errors naming the key.
type meta struct{ g *GGUFFile }

func describe(v any) string {
	if v == nil {
		return "missing"
	}
	return fmt.Sprintf("%T", v)
}

// describeArray names the type and, for a slice, the length of v.
func describeArray(v any) string {
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice {
		return fmt.Sprintf("%d %s", rv.Len(), rv.Type().Elem())
	}
	return describe(v)
}

func (m meta) str(key string, required bool) (string, error) {
	v, ok := m.g.Metadata[key]
	if !ok {
		if required {
			return "", fmt.Errorf("missing metadata %q", key)
		}
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("metadata %q is %s, want a string", key, describe(v))
	}
	return s, nil
}

func (m meta) int(key string, required bool) (int, bool, error) {
	v, ok := m.g.Metadata[key]
	if !ok {
		if required {
			return 0, false, fmt.Errorf("missing metadata %q", key)
		}
		return 0, false, nil
	}
	n, ok := asInt(v)
	if !ok {
		return 0, false, fmt.Errorf("metadata %q is %s, want an integer (per-layer arrays are not supported)", key, describe(v))
	}
	if n <= 0 || n >= maxConfigValue {
		return 0, false, fmt.Errorf("implausible config: metadata %q is %d", key, n)
	}
	return int(n), true, nil
}

func (m meta) float(key string, required bool) (float64, bool, error) {
	v, ok := m.g.Metadata[key]
	if !ok {
		if required {
			return 0, false, fmt.Errorf("missing metadata %q", key)
		}
		return 0, false, nil
	}
	f, ok := m.g.Float(key)
	if !ok {
		return 0, false, fmt.Errorf("metadata %q is %s, want a float", key, describe(v))
	}
	if !(f > 0) || math.IsInf(f, 0) || float32(f) == 0 || math.IsInf(float64(float32(f)), 0) {
		return 0, false, fmt.Errorf("implausible config: metadata %q is %g", key, f)
	}
	return f, true, nil
}

func (m meta) boolean(key string, def bool) (bool, error) {
	v, ok := m.g.Metadata[key]
	if !ok {
		return def, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("metadata %q is %s, want a bool", key, describe(v))
	}
	return b, nil
}
