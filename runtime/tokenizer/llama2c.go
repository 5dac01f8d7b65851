package tokenizer

import (
	"encoding/binary"
	"fmt"
	"math"
)

// maxVocabSize bounds the vocabulary a llama2.c file may claim, so that a corrupt size
// fails with an error instead of a huge allocation.
const maxVocabSize = 1 << 22

// ParseLlama2C reads llama2.c's tokenizer.bin: int32 max_token_length, then for each of
// vocabSize tokens a float32 score, an int32 byte length and the piece bytes, all
// little-endian. The file does not record its vocabulary size; the model config does, so
// the caller passes it. llama2.c's export writes pieces with " " for space, and BOS/EOS
// as "\n<s>\n" and "\n</s>\n"; those two are stored here as "<s>" and "</s>" so that
// special-token parsing and GGUF vocabularies agree.
func ParseLlama2C(data []byte, vocabSize int) (*Vocab, error) {
	if vocabSize < 3 {
		return nil, fmt.Errorf("llama2.c tokenizer: vocab size %d too small (ids 0-2 are <unk>, <s>, </s>)", vocabSize)
	}
	if vocabSize > maxVocabSize {
		return nil, fmt.Errorf("llama2.c tokenizer: vocab size %d exceeds limit %d", vocabSize, maxVocabSize)
	}
	if len(data) < 4 {
		return nil, fmt.Errorf("llama2.c tokenizer: truncated header: %d bytes, need 4", len(data))
	}
	maxLen := int32(binary.LittleEndian.Uint32(data))
	if maxLen < 0 {
		return nil, fmt.Errorf("llama2.c tokenizer: negative max_token_length %d", maxLen)
	}
	// Each token needs at least 8 bytes; checking up front keeps a bogus vocabSize from
	// allocating before the data runs out.
	if rest := len(data) - 4; rest/8 < vocabSize {
		return nil, fmt.Errorf("llama2.c tokenizer: truncated: %d bytes cannot hold %d tokens", len(data), vocabSize)
	}
	v := &Vocab{
		Model:          "llama",
		Tokens:         make([]string, vocabSize),
		Scores:         make([]float32, vocabSize),
		UNK:            0,
		BOS:            1,
		EOS:            2,
		AddBOS:         true,
		AddSpacePrefix: true,
	}
	off := 4
	for i := 0; i < vocabSize; i++ {
		if len(data)-off < 8 {
			return nil, fmt.Errorf("llama2.c tokenizer: truncated at token %d of %d (offset %d)", i, vocabSize, off)
		}
		score := math.Float32frombits(binary.LittleEndian.Uint32(data[off:]))
		n := int32(binary.LittleEndian.Uint32(data[off+4:]))
		off += 8
		if n < 0 {
			return nil, fmt.Errorf("llama2.c tokenizer: token %d has negative length %d", i, n)
		}
		if int64(n) > int64(len(data)-off) {
			return nil, fmt.Errorf("llama2.c tokenizer: token %d length %d runs past the end (%d bytes left)", i, n, len(data)-off)
		}
		v.Tokens[i] = string(data[off : off+int(n)])
		v.Scores[i] = score
		off += int(n)
	}
	if off != len(data) {
		return nil, fmt.Errorf("llama2.c tokenizer: %d trailing bytes after %d tokens (wrong vocab size?)", len(data)-off, vocabSize)
	}
	if v.Tokens[1] == "\n<s>\n" {
		v.Tokens[1] = "<s>"
	}
	if v.Tokens[2] == "\n</s>\n" {
		v.Tokens[2] = "</s>"
	}
	return v, nil
}
