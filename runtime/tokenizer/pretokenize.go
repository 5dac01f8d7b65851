package tokenizer

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Byte-level BPE splits text into pre-tokens with a regular expression before merging;
// no merge crosses a pre-token boundary. The expressions used by GPT-2 and Llama 3 need
// a lookahead ((?!\S)) that Go's regexp lacks, so each is a hand-written scanner that
// returns exactly the matches a backtracking engine (Oniguruma, as the HF tokenizers
// library uses, or fancy-regex, as tiktoken uses) finds: at each offset the first
// alternative that matches, with its greedy quantifiers backtracked as the engine would.
//
// Character classes follow those engines: \s is Unicode White_Space (U+0085 is space,
// U+FEFF is not), \p{L} and \p{N} are Go's Unicode tables, and (?i:'s) also matches
// "'ſ" (U+017F folds to s). JavaScript ports (transformers.js) differ in exactly those
// three places; see TestPreTokenizeEngineDifferences.

// preTokenizer returns the end of the pre-token that starts at s[i] (i < len(s)).
type preTokenizer func(s string, i int) int

// preTokenizerRegexes maps the patterns tokenizer.json files carry to scanners.
var preTokenizerRegexes = map[string]preTokenizer{
	llama3Pattern: llama3Next,
	gpt2Pattern:   gpt2Next,
}

const (
	// llama3Pattern is Llama 3's (tiktoken cl100k-style) split pattern.
	llama3Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// gpt2Pattern is GPT-2's, also what HF's ByteLevel pre-tokenizer applies when
	// use_regex is true.
	gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
)

// preTokenizerForGGUF maps tokenizer.ggml.pre to a scanner and whether llama.cpp
// ignores merges for it (takes a pre-token that is itself a token whole).
func preTokenizerForGGUF(pre string) (preTokenizer, bool, error) {
	switch pre {
	case "llama-bpe", "llama3", "llama-v3":
		return llama3Next, true, nil
	case "default", "gpt2", "":
		// llama.cpp falls back to "default" when the key is missing.
		return gpt2Next, false, nil
	}
	return nil, false, fmt.Errorf("tokenizer: unsupported pre-tokenizer %q (tokenizer.ggml.pre; supported: llama-bpe, llama3, llama-v3, default, gpt2)", pre)
}

// rune classes, with an ASCII fast path: most text is ASCII and unicode's tables cost
// a binary search per call.

func isLetter(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r|0x20 && r|0x20 <= 'z'
	}
	return unicode.IsLetter(r)
}

func isNumber(r rune) bool {
	if r < utf8.RuneSelf {
		return '0' <= r && r <= '9'
	}
	return unicode.IsNumber(r)
}

// isSpace is Unicode White_Space, which is what unicode.IsSpace tests.
func isSpace(r rune) bool {
	if r < utf8.RuneSelf {
		return r == ' ' || '\t' <= r && r <= '\r'
	}
	return unicode.IsSpace(r)
}

// isOther is [^\s\p{L}\p{N}]. Invalid UTF-8 decodes to U+FFFD, which is one; the
// end of the text (-1 from at) is not.
func isOther(r rune) bool { return r >= 0 && !isSpace(r) && !isLetter(r) && !isNumber(r) }

func isCRLF(r rune) bool { return r == '\r' || r == '\n' }

// at decodes the rune at s[i], returning (-1, 0) past the end, where no class matches.
func at(s string, i int) (rune, int) {
	if i >= len(s) {
		return -1, 0
	}
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// skip returns the end of the run of runes satisfying f from s[i].
func skip(s string, i int, f func(rune) bool) int {
	for i < len(s) {
		r, n := at(s, i)
		if !f(r) {
			break
		}
		i += n
	}
	return i
}

// contraction matches 's 't 're 've 'm 'll 'd at s[i], an apostrophe, folding case
// when fold is set, and returns the end or -1.
func contraction(s string, i int, fold bool) int {
	lower := func(r rune) rune {
		if !fold {
			return r
		}
		if r == 'ſ' {
			return 's'
		}
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}
	r1, n1 := at(s, i+1)
	switch lower(r1) {
	case 's', 't', 'm', 'd':
		return i + 1 + n1
	case 'r', 'v', 'l':
		want := 'e'
		if lower(r1) == 'l' {
			want = 'l'
		}
		if r2, n2 := at(s, i+1+n1); lower(r2) == want {
			return i + 1 + n1 + n2
		}
	}
	return -1
}

// spaceRun handles the whitespace alternatives both patterns end with,
// \s+(?!\S)|\s+ : a run of whitespace up to, but not including, the last one before a
// non-space, so that the space can lead the next word; the whole run at the end of the
// text; a lone space before a non-space on its own.
func spaceRun(s string, i int) int {
	end := skip(s, i, isSpace)
	if end == len(s) {
		return end
	}
	// Backtrack one rune: (?!\S) holds before the last space of the run.
	_, n := utf8.DecodeLastRuneInString(s[i:end])
	if end-n > i {
		return end - n
	}
	return end // \s+ alone: a single space before a non-space
}

// llama3Next scans one match of llama3Pattern.
func llama3Next(s string, i int) int {
	r0, n0 := at(s, i)
	// (?i:'s|'t|'re|'ve|'m|'ll|'d)
	if r0 == '\'' {
		if j := contraction(s, i, true); j > 0 {
			return j
		}
	}
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if isLetter(r0) {
		return skip(s, i+n0, isLetter)
	}
	if !isCRLF(r0) && !isNumber(r0) {
		if r1, n1 := at(s, i+n0); isLetter(r1) {
			return skip(s, i+n0+n1, isLetter)
		}
	}
	// \p{N}{1,3}
	if isNumber(r0) {
		j := i + n0
		for k := 0; k < 2; k++ {
			r, n := at(s, j)
			if !isNumber(r) {
				break
			}
			j += n
		}
		return j
	}
	// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
	j := i
	if r0 == ' ' {
		j++
	}
	if r, _ := at(s, j); isOther(r) {
		j = skip(s, j, isOther)
		return skip(s, j, isCRLF)
	}
	// \s*[\r\n]+ : the whitespace run up to and including its last \r or \n.
	if isSpace(r0) {
		end := skip(s, i, isSpace)
		for k := end - 1; k >= i; k-- {
			if isCRLF(rune(s[k])) {
				return k + 1
			}
		}
		return spaceRun(s, i)
	}
	return i + n0 // unreachable: every rune is a letter, number, space or other
}

// gpt2Next scans one match of gpt2Pattern.
func gpt2Next(s string, i int) int {
	r0, n0 := at(s, i)
	if r0 == '\'' {
		if j := contraction(s, i, false); j > 0 {
			return j
		}
	}
	// ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+'
	j, r := i, r0
	if r0 == ' ' {
		r, _ = at(s, i+1)
		j = i + 1
	}
	for _, class := range [...]func(rune) bool{isLetter, isNumber, isOther} {
		if class(r) {
			return skip(s, j, class)
		}
	}
	if isSpace(r0) {
		return spaceRun(s, i)
	}
	return i + n0 // unreachable
}
