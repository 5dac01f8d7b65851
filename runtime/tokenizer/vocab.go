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
// byte fallback through <0xXX> pieces.
type Vocab struct {
	Model  string      // "llama"
	Tokens []string    // piece text, SentencePiece form ("▁" for space in GGUF; llama2.c .bin uses " ")
	Scores []float32   // merge priority, higher first; len == len(Tokens)
	Types  []TokenType // nil: derived from the pieces (<0xXX> byte, <s></s> control, <unk> unknown)
	BOS    int         // -1 when absent
	EOS    int         // -1 when absent
	UNK    int         // -1 when absent
	AddBOS bool        // prepend BOS when encoding a prompt
	// AddSpacePrefix adds SentencePiece's dummy prefix (a space before non-empty text).
	AddSpacePrefix bool
}
