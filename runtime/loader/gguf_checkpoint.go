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
	// Config has no RoPE scaling yet: refuse files that need it rather than run them wrong.
	if st, err := m.str(p+"rope.scaling.type", false); err != nil {
		return nil, err
	} else if st != "" && st != "none" {
		return nil, fmt.Errorf("%srope.scaling.type %q not supported", p, st)
	}
	if f, ok, err := m.float(p+"rope.scale_linear", false); err != nil {
		return nil, err
	} else if ok && f != 1 {
		return nil, fmt.Errorf("%srope.scale_linear %g not supported", p, f)
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

// ggufVocab reads the tokenizer.ggml.* keys into a Vocab of the model's size.
func ggufVocab(m meta, vocabSize int) (*tokenizer.Vocab, error) {
	model, err := m.str("tokenizer.ggml.model", true)
	if err != nil {
		return nil, err
	}
	if model != "llama" {
		return nil, fmt.Errorf("tokenizer model %q not supported yet (only \"llama\")", model)
	}
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
	} else {
		v.Scores = make([]float32, len(toks))
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
		dst *int
		def int
	}{{"bos_token_id", &v.BOS, 1}, {"eos_token_id", &v.EOS, 2}, {"unknown_token_id", &v.UNK, 0}} {
		key := "tokenizer.ggml." + f.key
		raw, present := m.g.Metadata[key]
		id, isInt := asInt(raw)
		switch {
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
		*f.dst = int(id)
	}
	if v.AddBOS, err = m.boolean("tokenizer.ggml.add_bos_token", true); err != nil {
		return nil, err
	}
	if v.AddSpacePrefix, err = m.boolean("tokenizer.ggml.add_space_prefix", true); err != nil {
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
