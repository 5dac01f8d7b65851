package tokenizer

import "fmt"

// SyntheticVocab is the vocabulary of synthetic models (model.Synthetic): <unk>, <s>,
// </s>, the 256 byte tokens <0x00>..<0xFF>, then filler pieces "t<id>" up to n tokens,
// so any text encodes (as bytes) and every id decodes.
func SyntheticVocab(n int) *Vocab {
	v := &Vocab{Model: "llama", BOS: 1, EOS: 2, UNK: 0, AddBOS: true}
	add := func(s string, t TokenType) {
		v.Tokens = append(v.Tokens, s)
		v.Scores = append(v.Scores, 0)
		v.Types = append(v.Types, t)
	}
	add("<unk>", TypeUnknown)
	add("<s>", TypeControl)
	add("</s>", TypeControl)
	for i := 0; i < 256; i++ {
		add(fmt.Sprintf("<0x%02X>", i), TypeByte)
	}
	for i := len(v.Tokens); i < n; i++ {
		add(fmt.Sprintf("t%d", i), TypeNormal)
	}
	return v
}
