package tokenizer

import "unicode/utf8"

// Encode turns text into ids. For SentencePiece-style vocabularies (Model "llama") it
// follows llama2.c: a dummy " " is prepended to non-empty text (when the vocabulary asks
// for it), each UTF-8 character becomes its piece or, when the vocabulary lacks it, its
// bytes' <0xXX> pieces (invalid UTF-8 bytes too), then the adjacent pair whose
// concatenation is the best-scoring piece is merged, leftmost first on ties, until no
// pair merges. A priority queue over a linked list of symbols (as SentencePiece does)
// keeps this O(n log n) instead of llama2.c's O(n²) rescans; the result is the same.
// Vocabularies read from a tokenizer.json rank pairs by their merge list instead of by
// piece score. Byte-level vocabularies (Model "gpt2") pre-tokenize and merge by rank;
// see byteBPE.
//
// With ParseSpecial, special-token text splits the input: each special becomes its id
// and the pieces between are encoded separately; the dummy prefix goes on the first
// piece of text only (unless the vocabulary came from a tokenizer.json whose
// normalizer prepends it to every piece, as the HF library then does), so "<s>Hello"
// encodes like "Hello" with AddBOS.
func (t *Tokenizer) Encode(text string, opt EncodeOptions) []int32 {
	var e encoder
	return t.encodeWith(&e, text, opt)
}

// encodeWith is Encode with the encoder's limit (EncodeLimit).
func (t *Tokenizer) encodeWith(e *encoder, text string, opt EncodeOptions) []int32 {
	n := len(text)/3 + 2
	if e.limit > 0 {
		n = min(n, e.limit+2)
	}
	ids := make([]int32, 0, n)
	if opt.AddBOS && t.bos >= 0 {
		ids = append(ids, t.bos)
	}
	if !opt.ParseSpecial || len(t.special) == 0 {
		if text != "" {
			ids = e.encodeSegment(t, ids, text, true, true)
		}
		return ids
	}
	first, atStart := true, true
	for text != "" {
		m := t.findSpecial(text)
		if m.start > 0 {
			ids = e.encodeSegment(t, ids, text[:m.start], first, atStart)
			first = false
		}
		atStart = false
		if m.index < 0 || e.full(ids) {
			break
		}
		ids = append(ids, t.special[m.index].id)
		text = text[m.end:]
	}
	return ids
}

// encodeSegment encodes text that holds no special token; first says whether it is the
// first such text, atStart whether it opens the input.
func (e *encoder) encodeSegment(t *Tokenizer, dst []int32, s string, first, atStart bool) []int32 {
	if t.bpe != nil {
		return e.encodeBPE(t, dst, s, first)
	}
	prefix := t.addSpacePrefix
	switch t.prefixRule {
	case prefixFirstText:
		prefix = prefix && first
	case prefixAtStart:
		prefix = prefix && atStart
	}
	return e.encode(t, dst, s, prefix)
}

// prefixRule says which texts between special tokens get the dummy prefix.
type prefixRule uint8

const (
	prefixFirstText prefixRule = iota // the first text (llama.cpp, llama2.c)
	prefixEachText                    // every text (HF Prepend normalizer, Metaspace "always")
	prefixAtStart                     // only text at offset 0 of the input (HF Metaspace "first")
)

// symbol is one node of the merge list; id -1 marks a node merged into its left
// neighbour.
type symbol struct {
	id         int32
	prev, next int32
}

// candidate is a possible merge of symbols left and right (adjacent when pushed) into
// id. lid and rid record what the two held, so a stale candidate is recognised on pop.
type candidate struct {
	score       float32
	left, right int32
	lid, rid    int32
	id          int32
}

// before orders the queue: best score first, then leftmost. Symbols keep their original
// index, so index order is text order.
func (a *candidate) before(b *candidate) bool {
	return a.score > b.score || (a.score == b.score && a.left < b.left)
}

// encoder holds scratch buffers for one Encode call.
type encoder struct {
	syms  []symbol
	heap  []candidate
	buf   []byte
	cache map[string][]int32 // chunk -> ids, for long texts (see cacheMinLen)
	limit int                // > 0: stop between words once more ids than this (EncodeLimit)
}

// encode appends the ids of s, with the dummy prefix if asked. When the vocabulary
// allows (t.wordSplit), s is cut before each space that follows a non-space and the
// chunks are merged independently: no piece spans such a cut, so no merge could cross
// it, and each chunk's merges happen in the same relative order as in one global queue.
// Small queues keep the work in cache; the ids are the same.
func (e *encoder) encode(t *Tokenizer, dst []int32, s string, prefix bool) []int32 {
	if !t.wordSplit {
		return e.encodeChunk(t, dst, s, prefix)
	}
	if len(s) >= cacheMinLen && e.cache == nil {
		e.cache = make(map[string][]int32)
	}
	start := 0
	for i := 1; i <= len(s); i++ {
		if i < len(s) && (s[i] != ' ' || s[i-1] == ' ') {
			continue
		}
		if e.full(dst) {
			return dst
		}
		chunk := s[start:i]
		switch {
		case prefix && start == 0:
			dst = e.encodeChunk(t, dst, chunk, true)
		case e.cache != nil:
			ids, ok := e.cache[chunk]
			if !ok {
				n := len(dst)
				dst = e.encodeChunk(t, dst, chunk, false)
				ids = append([]int32(nil), dst[n:]...)
				e.cache[chunk] = ids
			} else {
				dst = append(dst, ids...)
			}
		default:
			dst = e.encodeChunk(t, dst, chunk, false)
		}
		start = i
	}
	return dst
}

// cacheMinLen is the text length from which encode memoizes chunks: long texts repeat
// words, short prompts would only pay for the map.
const cacheMinLen = 4096

func (e *encoder) encodeChunk(t *Tokenizer, dst []int32, s string, prefix bool) []int32 {
	e.syms = e.syms[:0]
	e.heap = e.heap[:0]
	if prefix {
		e.split(t, " ")
	}
	e.split(t, s)
	return e.mergeQueued(t, dst)
}

// mergeQueued merges e.syms best candidate first and appends the resulting ids.
func (e *encoder) mergeQueued(t *Tokenizer, dst []int32) []int32 {
	for i := range e.syms {
		e.push(t, int32(i))
	}
	for len(e.heap) > 0 {
		c := e.pop()
		l, r := &e.syms[c.left], &e.syms[c.right]
		if l.id != c.lid || l.next != c.right || r.id != c.rid {
			continue // a neighbour merged since this candidate was pushed
		}
		l.id = c.id
		l.next = r.next
		if r.next >= 0 {
			e.syms[r.next].prev = c.left
		}
		r.id = -1
		if l.prev >= 0 {
			e.push(t, l.prev)
		}
		e.push(t, c.left)
	}
	for i := int32(0); len(e.syms) > 0 && i >= 0; i = e.syms[i].next {
		dst = append(dst, e.syms[i].id)
	}
	return dst
}

// split appends one symbol per UTF-8 character of s, or per byte where the vocabulary
// lacks the character or the bytes are not valid UTF-8. A vocabulary without the byte
// pieces gives <unk> for the character instead (nothing if it has no <unk> either).
func (e *encoder) split(t *Tokenizer, s string) {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r != utf8.RuneError || size > 1 {
			if id, ok := t.pieceID[s[i:i+size]]; ok {
				e.add(id)
				i += size
				continue
			}
		}
		missing := false
		for j := i; j < i+size; j++ {
			missing = missing || t.byteID[s[j]] < 0
		}
		switch {
		case !missing:
			for j := i; j < i+size; j++ {
				e.add(t.byteID[s[j]])
			}
		case t.unk >= 0:
			e.add(int32(t.unk)) // one <unk> per character, as SentencePiece without byte fallback
		}
		i += size
	}
}

func (e *encoder) add(id int32) {
	n := int32(len(e.syms))
	e.syms = append(e.syms, symbol{id: id, prev: n - 1, next: -1})
	if n > 0 {
		e.syms[n-1].next = n
	}
}

// push queues the merge of symbol l with its right neighbour if the concatenation is a
// piece.
func (e *encoder) push(t *Tokenizer, l int32) {
	r := e.syms[l].next
	if r < 0 {
		return
	}
	lid, rid := e.syms[l].id, e.syms[r].id
	var c candidate
	switch {
	case t.bpe != nil:
		m, ok := t.bpe.merges[pairKey(lid, rid)]
		if !ok {
			return
		}
		c = candidate{score: rankScore(m.rank), id: m.id}
	case t.pairRank != nil:
		m, ok := t.pairRank[pairKey(lid, rid)]
		if !ok {
			return
		}
		c = candidate{score: rankScore(m.rank), id: m.id}
	default:
		e.buf = append(append(e.buf[:0], t.pieces[lid]...), t.pieces[rid]...)
		id, ok := t.pieceID[string(e.buf)]
		if !ok {
			return
		}
		c = candidate{score: t.scores[id], id: id}
	}
	c.left, c.right, c.lid, c.rid = l, r, lid, rid
	e.heap = append(e.heap, c)
	h := e.heap
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if !h[i].before(&h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (e *encoder) pop() candidate {
	h := e.heap
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		c := 2*i + 1
		if c >= len(h) {
			break
		}
		if c+1 < len(h) && h[c+1].before(&h[c]) {
			c++
		}
		if !h[c].before(&h[i]) {
			break
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
	e.heap = h
	return top
}
