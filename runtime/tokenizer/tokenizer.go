package tokenizer

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// spaceMarker is SentencePiece's stand-in for a space inside pieces (U+2581).
const spaceMarker = "▁"

// Tokenizer encodes and decodes with one vocabulary. It is immutable after New and safe
// for concurrent use.
type Tokenizer struct {
	pieces  []string    // piece text with " " for space, whatever the vocab's convention
	text    []string    // what each id decodes to: raw bytes for byte pieces, "" for control
	raw     []string    // each token as the vocabulary spells it, for TokenID
	scores  []float32   // merge priority
	types   []TokenType // never nil
	pieceID map[string]int32
	byteID  [256]int32 // id of the <0xXX> piece for each byte, -1 when missing
	special []special  // control/user-defined/unknown texts, longest first
	// specialFirst indexes special by the first byte of the text.
	specialFirst [256][]int32
	// wordSplit: no mergeable piece has a space after another character, so encoding
	// may cut the text before such spaces (see encoder.encode).
	wordSplit bool
	bos       int32
	eos       int32
	unk       int32
	eosIDs    []int32

	addBOS         bool
	addSpacePrefix bool
	parseSpecial   bool // DefaultOptions().ParseSpecial

	// pairRank, when set, ranks SentencePiece merges by a tokenizer.json merge list
	// instead of by piece score.
	pairRank map[uint64]merge
	// prefixRule says which texts between special tokens get the dummy prefix.
	prefixRule prefixRule
	// stripAfterBOS: the token after BOS loses a leading space when decoding (the
	// dummy prefix of SentencePiece vocabularies).
	stripAfterBOS bool

	bpe *byteBPE // non-nil for byte-level BPE vocabularies
}

// EncodeOptions controls one Encode call.
type EncodeOptions struct {
	AddBOS bool // prepend BOS (when the vocabulary has one)
	// ParseSpecial maps the text of control, user-defined and unknown tokens ("<s>",
	// "</s>", "<unk>", "<|eot_id|>") in the input to their ids. When false such text
	// is ordinary text, so untrusted input cannot inject an end-of-sequence.
	ParseSpecial bool
}

// New validates v and builds a Tokenizer. Model "llama" is SentencePiece-style BPE;
// pieces may use "▁" (GGUF, SentencePiece) or " " (llama2.c) for space: if any piece
// contains "▁" the vocabulary is taken to use that convention and "▁" is mapped to " ";
// both give identical ids. Model "gpt2" is byte-level BPE (GGUF's name for it): Tokens
// in the byte-level spelling, Merges as "left right" and Pre naming the pre-tokenizer.
func New(v *Vocab) (*Tokenizer, error) {
	if v == nil {
		return nil, fmt.Errorf("tokenizer: nil vocab")
	}
	switch v.Model {
	case "llama":
		return newSentencePiece(v)
	case "gpt2":
		pre, ignoreMerges, err := preTokenizerForGGUF(v.Pre)
		if err != nil {
			return nil, err
		}
		merges, err := splitMerges(v.Merges)
		if err != nil {
			return nil, err
		}
		return newByteLevel(v, merges, byteLevelOptions{pre: pre, ignoreMerges: ignoreMerges})
	}
	return nil, fmt.Errorf("tokenizer: unsupported model %q (supported: \"llama\", SentencePiece-style BPE; \"gpt2\", byte-level BPE)", v.Model)
}

// validate checks what every model needs of a Vocab.
func validate(v *Vocab) error {
	n := len(v.Tokens)
	if n == 0 {
		return fmt.Errorf("tokenizer: empty vocab")
	}
	if n > math.MaxInt32 {
		return fmt.Errorf("tokenizer: vocab size %d too large", n)
	}
	if len(v.Scores) != n && (v.Model != "gpt2" || v.Scores != nil) {
		return fmt.Errorf("tokenizer: %d tokens but %d scores", n, len(v.Scores))
	}
	if v.Types != nil && len(v.Types) != n {
		return fmt.Errorf("tokenizer: %d tokens but %d token types", n, len(v.Types))
	}
	for _, sp := range []struct {
		name string
		id   int32
	}{{"BOS", v.BOS}, {"EOS", v.EOS}, {"UNK", v.UNK}} {
		if sp.id < -1 || int(sp.id) >= n {
			return fmt.Errorf("tokenizer: %s id %d out of range [-1, %d)", sp.name, sp.id, n)
		}
	}
	for _, id := range v.EOSIDs {
		if id < 0 || int(id) >= n {
			return fmt.Errorf("tokenizer: end-of-sequence id %d out of range [0, %d)", id, n)
		}
	}
	for i, s := range v.Scores {
		if math.IsNaN(float64(s)) {
			return fmt.Errorf("tokenizer: token %d (%q) has NaN score", i, v.Tokens[i])
		}
	}
	return nil
}

// newCommon fills what all models share.
func newCommon(v *Vocab) *Tokenizer {
	n := len(v.Tokens)
	t := &Tokenizer{
		pieces:  make([]string, n),
		text:    make([]string, n),
		raw:     v.Tokens,
		scores:  v.Scores,
		types:   make([]TokenType, n),
		pieceID: make(map[string]int32, n),
		bos:     v.BOS,
		eos:     v.EOS,
		unk:     v.UNK,
		addBOS:  v.AddBOS,
	}
	if t.scores == nil {
		t.scores = make([]float32, n)
	}
	for i := range t.byteID {
		t.byteID[i] = -1
	}
	return t
}

// finish indexes the specials and gathers the end-of-sequence ids.
func (t *Tokenizer) finish(extraEOS []int32) {
	t.indexSpecials()
	seen := map[int32]bool{}
	add := func(id int32) {
		if id >= 0 && !seen[id] {
			seen[id] = true
			t.eosIDs = append(t.eosIDs, id)
		}
	}
	add(t.eos)
	for _, id := range extraEOS {
		add(id)
	}
	// Chat checkpoints end a turn with a token other than EOS; llama.cpp stops on these
	// too. They count only as control tokens, never as text that happens to match.
	for i, p := range t.raw {
		if endOfTurn[p] && t.types[i] == TypeControl {
			add(int32(i))
		}
	}
}

// endOfTurn lists the texts of control tokens that end generation besides EOS.
var endOfTurn = map[string]bool{
	"<|end_of_text|>": true, "<|eot_id|>": true, "<|eom_id|>": true, "<|endoftext|>": true,
	"<|im_end|>": true, "<|end|>": true, "<end_of_turn>": true, "</s>": true,
}

// newSentencePiece builds a Model "llama" tokenizer.
func newSentencePiece(v *Vocab) (*Tokenizer, error) {
	if err := validate(v); err != nil {
		return nil, err
	}
	t := newCommon(v)
	t.addSpacePrefix = v.AddSpacePrefix
	t.stripAfterBOS = true
	marker := false
	for _, p := range v.Tokens {
		if strings.Contains(p, spaceMarker) {
			marker = true
			break
		}
	}
	for i, p := range v.Tokens {
		if marker {
			p = strings.ReplaceAll(p, spaceMarker, " ")
		}
		t.pieces[i] = p
		typ := TypeNormal
		if v.Types != nil {
			typ = v.Types[i]
		} else {
			typ = deriveType(int32(i), p, v)
		}
		t.types[i] = typ
		switch typ {
		case TypeNormal, TypeUserDefined:
			// Only these take part in lookups and merges, as in SentencePiece: text can
			// never merge into "<s>" or "<0x0A>".
			if _, dup := t.pieceID[p]; !dup {
				t.pieceID[p] = int32(i)
			}
			t.text[i] = p
		case TypeByte:
			b, ok := parseBytePiece(p)
			if !ok {
				return nil, fmt.Errorf("tokenizer: token %d %q has type byte but is not <0xXX>", i, p)
			}
			if t.byteID[b] < 0 {
				t.byteID[b] = int32(i)
			}
			t.text[i] = string([]byte{b})
		case TypeControl:
			t.text[i] = ""
		default:
			t.text[i] = p
		}
		if typ == TypeControl || typ == TypeUserDefined || typ == TypeUnknown {
			if s := strings.Trim(p, "\n"); s != "" {
				t.special = append(t.special, special{text: s, id: int32(i)})
			}
		}
	}
	t.wordSplit = true
	for p := range t.pieceID {
		if strings.Contains(strings.TrimLeft(p, " "), " ") { // a space after a non-space
			t.wordSplit = false
			break
		}
	}
	t.finish(v.EOSIDs)
	return t, nil
}

// deriveType classifies a piece when the vocabulary carries no types (llama2.c files).
func deriveType(id int32, p string, v *Vocab) TokenType {
	switch {
	case id == v.UNK:
		return TypeUnknown
	case id == v.BOS || id == v.EOS:
		return TypeControl
	}
	if _, ok := parseBytePiece(p); ok {
		return TypeByte
	}
	switch p {
	case "<unk>":
		return TypeUnknown
	case "<s>", "</s>", "\n<s>\n", "\n</s>\n":
		return TypeControl
	}
	return TypeNormal
}

// parseBytePiece parses "<0xXX>" (hex digits either case), llama2.c's byte piece form.
func parseBytePiece(p string) (byte, bool) {
	if len(p) != 6 || p[:3] != "<0x" || p[5] != '>' {
		return 0, false
	}
	hi, ok1 := hexVal(p[3])
	lo, ok2 := hexVal(p[4])
	return hi<<4 | lo, ok1 && ok2
}

func hexVal(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// BOS returns the beginning-of-sequence id, -1 when the vocabulary has none.
func (t *Tokenizer) BOS() int32 { return t.bos }

// EOS returns the end-of-sequence id, -1 when the vocabulary has none.
func (t *Tokenizer) EOS() int32 { return t.eos }

// UNK returns the unknown-token id, -1 when the vocabulary has none.
func (t *Tokenizer) UNK() int32 { return t.unk }

// VocabSize returns the number of ids.
func (t *Tokenizer) VocabSize() int { return len(t.pieces) }

// Valid reports whether id is in the vocabulary.
func (t *Tokenizer) Valid(id int32) bool { return id >= 0 && int(id) < len(t.pieces) }

// IsControl reports whether id is a control token (BOS, EOS and the like).
func (t *Tokenizer) IsControl(id int32) bool { return t.Valid(id) && t.types[id] == TypeControl }

// Type returns id's token type, TypeUndefined when id is out of range.
func (t *Tokenizer) Type(id int32) TokenType {
	if !t.Valid(id) {
		return TypeUndefined
	}
	return t.types[id]
}

// Score returns id's merge score, 0 when id is out of range.
func (t *Tokenizer) Score(id int32) float32 {
	if !t.Valid(id) {
		return 0
	}
	return t.scores[id]
}

// DefaultOptions returns the options the vocabulary asks for: AddBOS from the file, and
// ParseSpecial for tokenizers read from a tokenizer.json (transformers parses special
// tokens by default) but not for the others.
func (t *Tokenizer) DefaultOptions() EncodeOptions {
	return EncodeOptions{AddBOS: t.addBOS, ParseSpecial: t.parseSpecial}
}

// EOSIDs returns every id that ends generation: EOS first, then the vocabulary's other
// end tokens (Vocab.EOSIDs, and control tokens such as Llama 3's <|eot_id|>). It is
// empty when there are none; the caller must not modify it.
func (t *Tokenizer) EOSIDs() []int32 { return t.eosIDs }

// IsEOS reports whether id is one of EOSIDs.
func (t *Tokenizer) IsEOS(id int32) bool {
	return slices.Contains(t.eosIDs, id)
}

// TokenID returns the id of the token the vocabulary spells text ("<|eot_id|>", "</s>",
// "▁the", "Ġthe"), for looking up special tokens by name. Among duplicates the lowest
// id wins.
func (t *Tokenizer) TokenID(text string) (int32, bool) {
	for _, sp := range t.special {
		if sp.text == text && t.raw[sp.id] == text {
			return sp.id, true
		}
	}
	for i, p := range t.raw {
		if p == text {
			return int32(i), true
		}
	}
	return -1, false
}

// Spelling is token id as the vocabulary writes it ("<|begin_of_text|>", "<s>",
// "Ġthe", "<0x0A>"): what templates print for special tokens. "" for invalid ids.
func (t *Tokenizer) Spelling(id int32) string {
	if !t.Valid(id) {
		return ""
	}
	return t.raw[id]
}

// Piece returns the text id decodes to on its own: byte pieces as their raw byte, "▁"
// as a space, control tokens as "". Out-of-range ids give "".
func (t *Tokenizer) Piece(id int32) string {
	if !t.Valid(id) {
		return ""
	}
	return t.text[id]
}

// Decode concatenates the pieces of ids. For SentencePiece vocabularies, as in llama2.c,
// the token right after BOS loses one leading space: that space is the dummy prefix
// Encode added. Byte-level vocabularies give back exactly the bytes encoded.
func (t *Tokenizer) Decode(ids []int32) string {
	var b strings.Builder
	prev := int32(-1)
	for _, id := range ids {
		s := t.Piece(id)
		if t.stripAfterBOS && prev >= 0 && prev == t.bos && len(s) > 0 && s[0] == ' ' {
			s = s[1:]
		}
		b.WriteString(s)
		prev = id
	}
	return b.String()
}
