package loader

import (
	"github.com/vireo-ai/vireo/runtime/quant/ggml"
	"github.com/vireo-ai/vireo/runtime/tokenizer"
)

// DType is a tensor element type as stored in a checkpoint file: a float type, or one of
// GGUF's block-quantized types (layouts and codecs in runtime/quant/ggml).
type DType int

const (
	F32  DType = iota // 4-byte IEEE float
	F16               // IEEE half
	BF16              // bfloat16
	Q8_0              // GGML blocks of 32: one f16 scale + 32 int8 (34 bytes)
	Q4_0              // GGML blocks of 32: f16 scale, 4-bit levels (18 bytes)
	Q4_1              // GGML blocks of 32: f16 scale and min, 4-bit levels (20 bytes)
	Q5_0              // GGML blocks of 32: f16 scale, 5-bit levels (22 bytes)
	Q5_1              // GGML blocks of 32: f16 scale and min, 5-bit levels (24 bytes)
	Q2_K              // GGML super-blocks of 256, 2-bit levels (84 bytes)
	Q3_K              // GGML super-blocks of 256, 3-bit levels (110 bytes)
	Q4_K              // GGML super-blocks of 256, 4-bit levels (144 bytes)
	Q5_K              // GGML super-blocks of 256, 5-bit levels (176 bytes)
	Q6_K              // GGML super-blocks of 256, 6-bit levels (210 bytes)
	I8                // GGML I8: raw bytes (the 2:4 metadata of vireo compress; see compressed.go)
)

// dtypeGGML maps each DType to its GGML type id.
var dtypeGGML = [...]ggml.Type{
	F32: ggml.F32, F16: ggml.F16, BF16: ggml.BF16, Q8_0: ggml.Q8_0,
	Q4_0: ggml.Q4_0, Q4_1: ggml.Q4_1, Q5_0: ggml.Q5_0, Q5_1: ggml.Q5_1,
	Q2_K: ggml.Q2_K, Q3_K: ggml.Q3_K, Q4_K: ggml.Q4_K, Q5_K: ggml.Q5_K, Q6_K: ggml.Q6_K,
	I8: ggmlI8,
}

// ggmlI8 is GGML_TYPE_I8.
const ggmlI8 ggml.Type = 24

// GGML is the type's GGML id; ok is false for a value that is not a DType.
func (d DType) GGML() (t ggml.Type, ok bool) {
	if d < 0 || int(d) >= len(dtypeGGML) {
		return 0, false
	}
	return dtypeGGML[d], true
}

// DTypeOf is the DType of a GGML type id, false for the types the loader does not read.
func DTypeOf(t ggml.Type) (DType, bool) {
	for d, g := range dtypeGGML {
		if g == t {
			return DType(d), true
		}
	}
	return 0, false
}

// Quantized reports a block-quantized type (Q8_0, Q4_0, ... Q6_K).
func (d DType) Quantized() bool {
	t, ok := d.GGML()
	return ok && t.Quantized()
}

// String is GGML's name of the type ("Q4_K").
func (d DType) String() string {
	if d == I8 {
		return "I8"
	}
	if t, ok := d.GGML(); ok {
		return t.String()
	}
	return "unknown"
}

// RopeStyle is how RoPE pairs the dimensions of a head.
type RopeStyle int

const (
	RopePairs      RopeStyle = iota // (2i, 2i+1): llama2.c and GGUF files
	RopeRotateHalf                  // (i, i+d/2): HF checkpoints with permuted q/k rows
)

// RopeScaling is HF's rope_scaling. Type "" means none; "llama3" scales low
// frequencies by 1/Factor, keeps high ones, and blends in between.
type RopeScaling struct {
	Type           string
	Factor         float32
	LowFreqFactor  float32
	HighFreqFactor float32
	OriginalMaxPos int // original_max_position_embeddings
}

// Config holds the hyper-parameters of a Llama-family model.
type Config struct {
	Arch        string  // "llama"
	Dim         int     // model width
	HiddenDim   int     // FFN width
	Layers      int     // transformer blocks
	Heads       int     // query heads
	KVHeads     int     // key/value heads (GQA when < Heads)
	HeadDim     int     // per-head width (Dim/Heads unless the checkpoint says otherwise)
	VocabSize   int     // rows of the embedding and classifier
	MaxSeqLen   int     // maximum context the model was trained for
	RopeTheta   float32 // RoPE base frequency
	RopeStyle   RopeStyle
	RopeScaling RopeScaling // frequency scaling for long context (Llama 3)
	// RopeFreqFactors, when set, divide the per-pair frequencies (GGUF's rope_freqs
	// tensor: llama.cpp's encoding of Llama 3 scaling). [HeadDim/2]
	RopeFreqFactors []float32
	NormEps         float32 // RMSNorm epsilon
	TiedEmbeddings  bool    // classifier shares token_embd.weight
}

// Tensor is one named tensor of a checkpoint; Data aliases the memory-mapped file.
// Shape is row-major, outermost first: a linear layer is [out][in].
type Tensor struct {
	Name  string
	Type  DType
	Shape []int
	Data  []byte
	// GGMLType is the GGML type id as stored in a GGUF file (the reader sets it). WriteGGUF
	// writes it in place of Type's id when it is non-zero, so tests can build files with
	// types the loader does not read (Data is then written as given).
	GGMLType uint32
}

// Checkpoint is an opened model file: configuration, tensors under canonical (GGUF)
// names, and the vocabulary. Close unmaps the file; tensors are invalid afterwards.
//
// Canonical names: token_embd.weight [vocab][dim]; blk.N.attn_norm.weight [dim];
// blk.N.attn_q.weight [heads*head_dim][dim]; blk.N.attn_k.weight, blk.N.attn_v.weight
// [kv_heads*head_dim][dim]; blk.N.attn_output.weight [dim][heads*head_dim];
// blk.N.ffn_norm.weight [dim]; blk.N.ffn_gate.weight, blk.N.ffn_up.weight [hidden][dim];
// blk.N.ffn_down.weight [dim][hidden]; output_norm.weight [dim]; output.weight
// [vocab][dim] (absent when tied).
type Checkpoint struct {
	Path    string
	Format  string // "gguf", "llama2c" or "hf" (a Hugging Face model directory)
	Config  Config
	Tensors map[string]*Tensor
	// Vocab is the vocabulary for tokenizer.New; nil when Tokenizer is set instead.
	Vocab *tokenizer.Vocab
	// Tokenizer is a ready tokenizer for formats that describe one completely (an HF
	// directory's tokenizer.json); nil otherwise, and then Vocab is set.
	Tokenizer *tokenizer.Tokenizer
	// ChatTemplate is tokenizer.chat_template from a GGUF file, or an HF directory's
	// tokenizer_config.json chat_template ("" when absent).
	ChatTemplate string
	// EOSIDs are the ids that end generation according to the checkpoint's own
	// generation settings (an HF directory's generation_config.json eos_token_id, int or
	// list, else config.json's); nil when it says nothing.
	EOSIDs []int32
	// GenerationDefaults are the sampling defaults generation_config.json suggests.
	GenerationDefaults GenerationDefaults
	// GGUF is the parsed GGUF header (metadata, tensor list) for GGUF checkpoints; nil
	// for other formats.
	GGUF  *GGUFFile
	close func() error
}

// GenerationDefaults are a checkpoint's suggested sampling settings; nil fields were
// not given.
type GenerationDefaults struct {
	DoSample    *bool
	Temperature *float64
	TopP        *float64
	TopK        *int
	// MaxNewTokens is max_new_tokens (or max_length) when given.
	MaxNewTokens *int
}

// Close releases the file mapping.
func (c *Checkpoint) Close() error {
	if c.close == nil {
		return nil
	}
	err := c.close()
	c.close = nil
	return err
}
