package tokenizer

import (
	"fmt"
	"strings"
)

// merge is one entry of a BPE merge list: the pair's priority (lower merges first) and
// the token it produces.
type merge struct {
	rank int32
	id   int32
}

func pairKey(l, r int32) uint64 { return uint64(uint32(l))<<32 | uint64(uint32(r)) }

// byteBPE is the model of a byte-level BPE tokenizer (GPT-2, Llama 3): the text is cut
// into pre-tokens, each pre-token's bytes start as one symbol each, and the adjacent
// pair with the lowest merge rank is merged (leftmost among equal ranks, which can only
// be the same pair) until no pair is in the merge list.
type byteBPE struct {
	pre            preTokenizer
	addPrefixSpace bool             // HF ByteLevel add_prefix_space: a space before text not starting with one
	ignoreMerges   bool             // a pre-token that is itself a token is taken whole (Llama 3)
	byteTok        [256]int32       // the single-byte token of each byte, -1 when missing
	merges         map[uint64]merge // pairKey(left, right) -> rank and result
	tokenID        map[string]int32 // raw bytes -> id of normal tokens, for ignoreMerges
}

// mergePair is a merge as the file spells it, before ids are known.
type mergePair [2]string

// splitMerges parses GGUF's and older tokenizer.json's "left right" merge strings.
// Byte-level and SentencePiece spellings never contain a plain space, so the split is
// unambiguous.
func splitMerges(lines []string) ([]mergePair, error) {
	out := make([]mergePair, len(lines))
	for i, m := range lines {
		l, r, ok := strings.Cut(m, " ")
		if !ok || l == "" || r == "" || strings.Contains(r, " ") {
			return nil, fmt.Errorf("tokenizer: merge %d %q is not two tokens separated by one space", i, m)
		}
		out[i] = mergePair{l, r}
	}
	return out, nil
}

// buildMerges resolves merge spellings to ids. Both sides and the concatenation must be
// tokens, as the HF library requires when it loads a file. A pair listed twice keeps
// its first (best) rank.
func buildMerges(pairs []mergePair, id func(string) (int32, bool)) (map[uint64]merge, error) {
	if len(pairs) > 1<<24 {
		// Ranks become float32 scores in the SentencePiece encoder; keep them exact.
		return nil, fmt.Errorf("tokenizer: %d merges exceed the limit of %d", len(pairs), 1<<24)
	}
	m := make(map[uint64]merge, len(pairs))
	for rank, p := range pairs {
		l, okl := id(p[0])
		r, okr := id(p[1])
		res, okres := id(p[0] + p[1])
		switch {
		case !okl:
			return nil, fmt.Errorf("tokenizer: merge %d (%q %q): %q is not in the vocabulary", rank, p[0], p[1], p[0])
		case !okr:
			return nil, fmt.Errorf("tokenizer: merge %d (%q %q): %q is not in the vocabulary", rank, p[0], p[1], p[1])
		case !okres:
			return nil, fmt.Errorf("tokenizer: merge %d (%q %q): result %q is not in the vocabulary", rank, p[0], p[1], p[0]+p[1])
		}
		k := pairKey(l, r)
		if _, dup := m[k]; !dup {
			m[k] = merge{rank: int32(rank), id: res}
		}
	}
	return m, nil
}

// encodeBPE appends the ids of one segment of text (no special tokens in it).
func (e *encoder) encodeBPE(t *Tokenizer, dst []int32, s string, first bool) []int32 {
	b := t.bpe
	if b.addPrefixSpace && first && s != "" && s[0] != ' ' {
		s = " " + s
	}
	if len(s) >= cacheMinLen && e.cache == nil {
		e.cache = make(map[string][]int32)
	}
	for i := 0; i < len(s) && !e.full(dst); {
		j := b.pre(s, i)
		if j <= i { // a scanner bug must not hang Encode
			j = i + 1
		}
		word := s[i:j]
		i = j
		if b.ignoreMerges {
			if id, ok := b.tokenID[word]; ok {
				dst = append(dst, id)
				continue
			}
		}
		if len(word) == 1 {
			dst = e.appendByte(t, dst, word[0])
			continue
		}
		if e.cache != nil {
			if ids, ok := e.cache[word]; ok {
				dst = append(dst, ids...)
				continue
			}
			n := len(dst)
			dst = e.mergeWord(t, dst, word)
			e.cache[word] = append([]int32(nil), dst[n:]...)
			continue
		}
		dst = e.mergeWord(t, dst, word)
	}
	return dst
}

// appendByte appends the token of one byte: <unk> when the vocabulary lacks it and has
// one, nothing otherwise (as the HF BPE model does without unk_token).
func (e *encoder) appendByte(t *Tokenizer, dst []int32, c byte) []int32 {
	if id := t.bpe.byteTok[c]; id >= 0 {
		return append(dst, id)
	}
	if t.unk >= 0 {
		return append(dst, t.unk)
	}
	return dst
}

// linearMax is the word length up to which mergeWord rescans for the best pair instead
// of keeping a queue: pre-tokens are mostly a few bytes, where a scan beats a heap.
const linearMax = 24

// mergeWord appends the ids of one pre-token.
func (e *encoder) mergeWord(t *Tokenizer, dst []int32, w string) []int32 {
	b := t.bpe
	if len(w) > linearMax {
		return e.mergeWordQueue(t, dst, w)
	}
	var buf [linearMax]int32
	ids := buf[:0]
	for i := 0; i < len(w); i++ {
		if id := b.byteTok[w[i]]; id >= 0 {
			ids = append(ids, id)
		} else if t.unk >= 0 {
			ids = append(ids, t.unk)
		}
	}
	var ranks [linearMax]merge
	for i := 0; i+1 < len(ids); i++ {
		ranks[i] = b.lookup(ids[i], ids[i+1])
	}
	for len(ids) > 1 {
		best := -1
		for i := 0; i+1 < len(ids); i++ {
			if ranks[i].rank >= 0 && (best < 0 || ranks[i].rank < ranks[best].rank) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		ids[best] = ranks[best].id
		copy(ids[best+1:], ids[best+2:])
		ids = ids[:len(ids)-1]
		copy(ranks[best+1:], ranks[best+2:len(ids)+1])
		if best > 0 {
			ranks[best-1] = b.lookup(ids[best-1], ids[best])
		}
		if best+1 < len(ids) {
			ranks[best] = b.lookup(ids[best], ids[best+1])
		}
	}
	return append(dst, ids...)
}

// lookup returns the merge of (l, r), rank -1 when there is none.
func (b *byteBPE) lookup(l, r int32) merge {
	if m, ok := b.merges[pairKey(l, r)]; ok {
		return m
	}
	return merge{rank: -1}
}

// mergeWordQueue is mergeWord for long pre-tokens (a run of thousands of letters, say):
// the linked list and candidate queue the SentencePiece encoder uses, ordered by rank,
// so the work is O(n log n).
func (e *encoder) mergeWordQueue(t *Tokenizer, dst []int32, w string) []int32 {
	e.syms = e.syms[:0]
	e.heap = e.heap[:0]
	for i := 0; i < len(w); i++ {
		if id := t.bpe.byteTok[w[i]]; id >= 0 {
			e.add(id)
		} else if t.unk >= 0 {
			e.add(int32(t.unk))
		}
	}
	return e.mergeQueued(t, dst)
}

// rankScore turns a merge rank into a candidate score: higher is better, and float32
// holds ranks below 2^24 exactly (buildMerges checks).
func rankScore(rank int32) float32 { return -float32(rank) }

// byteLevelOptions are the parts of a byte-level tokenizer that the vocabulary itself
// does not say.
type byteLevelOptions struct {
	pre            preTokenizer
	ignoreMerges   bool
	addPrefixSpace bool
}

// newByteLevel builds a byte-level BPE tokenizer. Tokens are in the byte-level spelling;
// those of type control, user-defined or unknown are matched as special text, and
// control tokens decode to nothing, as for SentencePiece vocabularies.
func newByteLevel(v *Vocab, merges []mergePair, opt byteLevelOptions) (*Tokenizer, error) {
	if err := validate(v); err != nil {
		return nil, err
	}
	t := newCommon(v)
	b := &byteBPE{
		pre:            opt.pre,
		ignoreMerges:   opt.ignoreMerges,
		addPrefixSpace: opt.addPrefixSpace,
		tokenID:        make(map[string]int32, len(v.Tokens)),
	}
	for i := range b.byteTok {
		b.byteTok[i] = -1
	}
	t.bpe = b
	spelled := make(map[string]int32, len(v.Tokens))
	for i, p := range v.Tokens {
		typ := TypeNormal
		if v.Types != nil {
			typ = v.Types[i]
		}
		switch typ {
		case TypeNormal, TypeUserDefined, TypeControl, TypeUnknown, TypeUnused, TypeUndefined:
		default:
			return nil, fmt.Errorf("tokenizer: token %d %q has type %d, which byte-level vocabularies do not use", i, p, typ)
		}
		t.types[i] = typ
		if _, dup := spelled[p]; !dup {
			spelled[p] = int32(i)
		}
		raw, _ := byteLevelDecode(p)
		t.pieces[i] = raw
		switch typ {
		case TypeControl:
			t.text[i] = ""
		case TypeNormal:
			t.text[i] = raw
			if _, dup := b.tokenID[raw]; !dup {
				b.tokenID[raw] = int32(i)
			}
			if len(raw) == 1 && b.byteTok[raw[0]] < 0 {
				b.byteTok[raw[0]] = int32(i)
			}
		default:
			t.text[i] = p
		}
		if (typ == TypeControl || typ == TypeUserDefined || typ == TypeUnknown) && p != "" {
			t.special = append(t.special, special{text: p, id: int32(i)})
		}
	}
	var err error
	b.merges, err = buildMerges(merges, func(s string) (int32, bool) { id, ok := spelled[s]; return id, ok })
	if err != nil {
		return nil, err
	}
	t.finish(v.EOSIDs)
	return t, nil
}
