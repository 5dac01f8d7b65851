package tokenizer

// TokenType classifies a vocabulary entry. The values are SentencePiece's and GGUF's
// (tokenizer.ggml.token_type), so they pass through loaders unchanged.
type TokenType int32

const (
	TypeUndefined   TokenType = 0
	TypeNormal      TokenType = 1
	TypeUnknown     TokenType = 2
	TypeControl     TokenType = 3
	TypeUserDefined TokenType = 4
	TypeUnused      TokenType = 5
	TypeByte        TokenType = 6
)

// Vocab is a vocabulary as a checkpoint stores it; loaders fill it, New turns it into a
// Tokenizer. Model "llama" is SentencePiece-style BPE: merges chosen by piece score,
// byte fallback through <0xXX> pieces. Model "gpt2" is byte-level BPE (GPT-2, Llama 3):
// merges chosen by their rank in Merges after the text is cut by the Pre pre-tokenizer.
type Vocab struct {
	Model  string      // "llama" or "gpt2" (GGUF tokenizer.ggml.model)
	Tokens []string    // piece text, SentencePiece form ("▁" for space in GGUF; llama2.c .bin uses " ")
	Scores []float32   // merge priority, higher first; len == len(Tokens) (may be nil for "gpt2")
	Types  []TokenType // nil: derived from the pieces (<0xXX> byte, <s></s> control, <unk> unknown)
	BOS    int32       // -1 when absent
	EOS    int32       // -1 when absent
	UNK    int32       // -1 when absent
	AddBOS bool        // prepend BOS when encoding a prompt
	// AddSpacePrefix adds SentencePiece's dummy prefix (a space before non-empty text).
	AddSpacePrefix bool

	// Merges is the byte-level merge list, best first, each "left right" in the
	// vocabulary's spelling (tokenizer.ggml.merges). Model "gpt2" only.
	Merges []string
	// Pre names the pre-tokenizer (tokenizer.ggml.pre): "llama-bpe" (also "llama3",
	// "llama-v3") for Llama 3's split, "default" or "gpt2" (or "") for GPT-2's. Model
	// "gpt2" only.
	Pre string
	// EOSIDs lists further ids that end generation besides EOS (Llama 3 instruct's
	// <|eot_id|>, a generation_config's eos_token_id list).
	EOSIDs []int32
}
