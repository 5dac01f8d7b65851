package tokenizer

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// special is a token whose text, with ParseSpecial, is matched in the input before any
// other processing: control tokens ("<s>", "<|eot_id|>"), user-defined and unknown
// tokens, and a tokenizer.json's added_tokens. The flags are the HF AddedToken ones.
type special struct {
	text string
	id   int32
	// lstrip and rstrip swallow the whitespace before and after a match (it belongs to
	// the token); singleWord matches only when the text is not inside a word.
	lstrip, rstrip, singleWord bool
}

// specialMatch is one special-token occurrence: the text before it ends at start, the
// text after it begins at end, and index is its position in Tokenizer.special (-1 for
// no match, with start == end == len(s)).
type specialMatch struct {
	start, end, index int
}

// indexSpecials sorts the specials longest first (the lowest id among equal texts
// first) and indexes them by first byte, so that findSpecial looks at one short list
// per input byte instead of every special.
func (t *Tokenizer) indexSpecials() {
	sort.SliceStable(t.special, func(a, b int) bool { return len(t.special[a].text) > len(t.special[b].text) })
	for i := range t.specialFirst {
		t.specialFirst[i] = nil
	}
	for k, sp := range t.special {
		c := sp.text[0]
		t.specialFirst[c] = append(t.specialFirst[c], int32(k))
	}
}

// findSpecial returns the first special-token text in s, the longest one at that offset
// (leftmost-longest, as the HF library's matcher and llama.cpp do).
func (t *Tokenizer) findSpecial(s string) specialMatch {
	for i := 0; i < len(s); i++ {
		for _, k := range t.specialFirst[s[i]] {
			sp := &t.special[k]
			if !strings.HasPrefix(s[i:], sp.text) {
				continue
			}
			end := i + len(sp.text)
			if sp.singleWord && (isWordBefore(s, i) || isWordAfter(s, end)) {
				continue
			}
			start := i
			if sp.lstrip {
				start = len(strings.TrimRightFunc(s[:i], unicode.IsSpace))
			}
			if sp.rstrip {
				end = len(s) - len(strings.TrimLeftFunc(s[end:], unicode.IsSpace))
			}
			return specialMatch{start: start, end: end, index: int(k)}
		}
	}
	return specialMatch{start: len(s), end: len(s), index: -1}
}

// isWordRune is \w as the HF library tests single_word boundaries.
func isWordRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.M, r)
}

func isWordBefore(s string, i int) bool {
	r, n := utf8.DecodeLastRuneInString(s[:i])
	return n > 0 && isWordRune(r)
}

func isWordAfter(s string, i int) bool {
	r, n := utf8.DecodeRuneInString(s[i:])
	return n > 0 && isWordRune(r)
}
