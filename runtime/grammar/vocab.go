package grammar

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// shortLen is the token length (bytes) up to which per-node tables are shared by
// equivalent nodes; longer tokens (a few hundred in a 128k vocabulary) are checked per
// node, on first use.
const shortLen = 24

// Vocab is a tokenizer's vocabulary as grammars see it: the bytes each token adds to
// the output, and the end-of-sequence ids. Tokens that add nothing (control tokens)
// are never allowed by a grammar; end-of-sequence ids are allowed exactly where the
// grammar accepts. A Vocab holds tries of the tokens and is immutable and safe for
// concurrent use.
type Vocab struct {
	n      int
	pieces []string
	eos    []int32
	single [256]int32 // the token whose text is exactly that byte, -1 when none
	maxLen int
	short  *trie // tokens of at most shortLen bytes
	long   *trie // the longer ones
}

// trie holds tokens in lexicographic order of their bytes, so a node's subtree is a
// contiguous run of toks. Nodes are numbered in preorder; node 0 is the root.
type trie struct {
	edgeStart []int32 // edges of node i: edgeStart[i]:edgeEnd[i]
	edgeEnd   []int32
	edgeByte  []byte
	edgeChild []int32
	tokLo     []int32 // toks[tokLo:tokHere] end at the node, toks[tokLo:tokHi] are its subtree
	tokHere   []int32
	tokHi     []int32
	below     [][4]uint64 // the bytes on the edges below the node
	toks      []int32
	depth     int // longest token
}

// NewVocab indexes a vocabulary: pieces[id] is what token id adds to the text ("" for
// tokens that add nothing), eos the ids that end a completion.
func NewVocab(pieces []string, eos []int32) (*Vocab, error) {
	v := &Vocab{n: len(pieces), pieces: pieces}
	for i := range v.single {
		v.single[i] = -1
	}
	for _, id := range eos {
		if id < 0 || int(id) >= len(pieces) {
			return nil, fmt.Errorf("grammar: end-of-sequence id %d outside the vocabulary of %d", id, len(pieces))
		}
		if !slices.Contains(v.eos, id) {
			v.eos = append(v.eos, id)
		}
	}
	var short, long []int32
	for id, p := range pieces {
		if p == "" || slices.Contains(v.eos, int32(id)) {
			continue
		}
		v.maxLen = max(v.maxLen, len(p))
		if len(p) == 1 && v.single[p[0]] < 0 {
			v.single[p[0]] = int32(id)
		}
		if len(p) <= shortLen {
			short = append(short, int32(id))
		} else {
			long = append(long, int32(id))
		}
	}
	v.short = newTrie(pieces, short)
	v.long = newTrie(pieces, long)
	return v, nil
}

func newTrie(pieces []string, toks []int32) *trie {
	slices.SortFunc(toks, func(a, b int32) int {
		return cmp.Or(strings.Compare(pieces[a], pieces[b]), int(a-b))
	})
	t := &trie{toks: toks}
	for _, id := range toks {
		t.depth = max(t.depth, len(pieces[id]))
	}
	t.build(pieces, 0, 0, int32(len(toks)))
	return t
}

// build adds the node for toks[lo:hi], which share their first depth bytes, and
// returns its index.
func (t *trie) build(pieces []string, depth int, lo, hi int32) int32 {
	id := int32(len(t.tokLo))
	t.tokLo = append(t.tokLo, lo)
	here := lo
	for here < hi && len(pieces[t.toks[here]]) == depth {
		here++
	}
	t.tokHere = append(t.tokHere, here)
	t.tokHi = append(t.tokHi, hi)
	t.edgeStart = append(t.edgeStart, 0)
	t.edgeEnd = append(t.edgeEnd, 0)
	t.below = append(t.below, [4]uint64{})
	type child struct {
		b      byte
		lo, hi int32
	}
	var kids []child
	for i := here; i < hi; {
		b := pieces[t.toks[i]][depth]
		j := i + 1
		for j < hi && pieces[t.toks[j]][depth] == b {
			j++
		}
		kids = append(kids, child{b, i, j})
		i = j
	}
	nodes := make([]int32, len(kids))
	var below [4]uint64
	for k, c := range kids {
		nodes[k] = t.build(pieces, depth+1, c.lo, c.hi)
		below[c.b>>6] |= 1 << (c.b & 63)
		for i, w := range t.below[nodes[k]] {
			below[i] |= w
		}
	}
	t.below[id] = below
	t.edgeStart[id] = int32(len(t.edgeByte))
	for k, c := range kids {
		t.edgeByte = append(t.edgeByte, c.b)
		t.edgeChild = append(t.edgeChild, nodes[k])
	}
	t.edgeEnd[id] = int32(len(t.edgeByte))
	return id
}

// Size is the number of token ids.
func (v *Vocab) Size() int { return v.n }

// Piece is the text of token id.
func (v *Vocab) Piece(id int32) string {
	if id < 0 || int(id) >= v.n {
		return ""
	}
	return v.pieces[id]
}

// EOS returns the end-of-sequence ids.
func (v *Vocab) EOS() []int32 { return v.eos }

func (v *Vocab) isEOS(id int32) bool { return slices.Contains(v.eos, id) }
