package tokenizer

// Bounding the cost of encoding untrusted text: a server must refuse a prompt that
// cannot fit its context without paying for the whole encoding (which takes tens of
// bytes of scratch per input byte).

// MaxTokenBytes is the most input bytes one token can stand for when encoding with
// opt: the longest piece (or special-token text), and 4 (one character) where an
// unknown character becomes <unk>. So a text of n bytes encodes to at least
// ceil(n / MaxTokenBytes) ids, and a caller can refuse a text whose bytes alone prove
// it too long. It is 0 when no such bound holds: a vocabulary that drops characters
// it cannot spell (no byte pieces, no <unk>), or, with ParseSpecial, a special token
// that swallows the whitespace around it (lstrip, rstrip).
func (t *Tokenizer) MaxTokenBytes(opt EncodeOptions) int {
	ids := t.byteID
	if t.bpe != nil {
		ids = t.bpe.byteTok
	}
	if t.unk < 0 {
		for _, id := range ids {
			if id < 0 {
				return 0
			}
		}
	}
	longest := 1
	if t.unk >= 0 {
		longest = 4
	}
	for _, p := range t.pieces {
		longest = max(longest, len(p))
	}
	if opt.ParseSpecial {
		for _, sp := range t.special {
			if sp.lstrip || sp.rstrip {
				return 0
			}
			longest = max(longest, len(sp.text))
		}
	}
	return longest
}

// EncodeLimit is Encode that gives up once the text is known to need more than limit
// ids: it returns false then, with the ids so far (more than limit of them), having
// done work in proportion to limit rather than to the text. Encoding stops between
// words (SentencePiece vocabularies whose pieces never span a space after a
// character, and byte-level vocabularies, which pre-tokenize), so the work past the
// limit is at most one word; other vocabularies encode the whole text first.
// A limit <= 0 means none.
func (t *Tokenizer) EncodeLimit(text string, opt EncodeOptions, limit int) ([]int32, bool) {
	e := encoder{limit: limit}
	ids := t.encodeWith(&e, text, opt)
	return ids, limit <= 0 || len(ids) <= limit
}

// full reports whether dst already holds more ids than the encoder's limit.
func (e *encoder) full(dst []int32) bool { return e.limit > 0 && len(dst) > e.limit }
