package grammar

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"time"
)

// Matcher follows one output through a grammar: each step it says which tokens may
// come next (FillMask, or MaskLogits), then takes the token sampled (Accept). It is
// not safe for concurrent use; use one per sequence.
//
// Budget. Given the tokens left (including the one being chosen), the mask also keeps
// the output finishable: a token is allowed only if, after it, the grammar can still be
// completed and end-of-sequence emitted within the budget, counting one token per byte
// on the shortest completion (every byte the shortest completion needs has a
// single-byte token in the vocabularies Vireo serves; where one does not, that byte is
// not counted on as a way out). So an output finishes with end-of-sequence within its
// max_tokens unless the grammar's shortest output does not fit at all.
type Matcher struct {
	bg   *boundGrammar
	fs   frames
	cfgs []cfg
	nxt  []cfg
	done bool
	bits []uint64
	tmp1 []cfg
	tmp2 []cfg
}

// Errors Accept returns.
var (
	ErrRejected = errors.New("grammar: token not allowed here")
	ErrFinished = errors.New("grammar: the output is already complete")
)

// NewMatcher starts a matcher at the beginning of an output. The vocabulary's tables
// are built on the first call for a (grammar, vocabulary) pair and then shared.
func (g *Grammar) NewMatcher(v *Vocab) *Matcher {
	bg := g.bind(v)
	m := &Matcher{bg: bg, cfgs: []cfg{{g.ruleStart[0], -1}}}
	m.settle()
	return m
}

// Prepare builds g's tables for v ahead of the first matcher (NewMatcher would build
// them otherwise).
func (g *Grammar) Prepare(v *Vocab) { g.bind(v) }

// BindTime is how long building the tables for v took.
func (g *Grammar) BindTime(v *Vocab) time.Duration { return g.bind(v).BindTime }

// Done reports that end-of-sequence has been accepted.
func (m *Matcher) Done() bool { return m.done }

// CanEnd reports that the output so far is complete (end-of-sequence is allowed).
func (m *Matcher) CanEnd() bool {
	for _, c := range m.cfgs {
		if addDist(m.bg.dist[c.node], m.fs.dist(c.stack)) == 0 {
			return true
		}
	}
	return false
}

// MinRemaining is the fewest tokens (one per byte, plus end-of-sequence) that can
// complete the output from here; a large value when the vocabulary cannot.
func (m *Matcher) MinRemaining() int {
	d := m.bg.minDist(&m.fs, m.cfgs)
	if d >= inf {
		return math.MaxInt32
	}
	return int(d) + 1
}

// Accept advances over token tok.
func (m *Matcher) Accept(tok int32) error {
	if m.done {
		return ErrFinished
	}
	v := m.bg.v
	if v.isEOS(tok) {
		if !m.CanEnd() {
			return fmt.Errorf("%w: end-of-sequence before the output is complete", ErrRejected)
		}
		m.done = true
		return nil
	}
	if tok < 0 || int(tok) >= v.n || v.pieces[tok] == "" {
		return fmt.Errorf("%w: token %d adds no text", ErrRejected, tok)
	}
	cur := m.cfgs
	for _, b := range []byte(v.pieces[tok]) {
		m.nxt, _ = m.bg.advance(&m.fs, cur, b, m.nxt[:0])
		cur, m.nxt = m.nxt, cur
		if len(cur) == 0 {
			m.nxt = cur
			return fmt.Errorf("%w: token %d (%q)", ErrRejected, tok, v.pieces[tok])
		}
	}
	m.cfgs = cur
	m.settle()
	return nil
}

// settle returns from final nodes (accepting, nothing can follow in their rule) at
// once, so that no configuration waits at one with a caller below it.
func (m *Matcher) settle() {
	bg := m.bg
	changed := false
	for i, c := range m.cfgs {
		for bg.final[c.node] && c.stack >= 0 {
			f := m.fs.f[c.stack]
			c = cfg{f.ret, f.parent}
			changed = true
		}
		m.cfgs[i] = c
	}
	if changed && len(m.cfgs) > 1 {
		out := m.cfgs[:0]
		for _, c := range m.cfgs {
			out = addCfg(out, c)
		}
		m.cfgs = out
	}
}

// FillMask sets bit id of dst (one bit per token, len(dst) >= (vocab+63)/64) for
// every token allowed next with remaining tokens left, this one included (<= 0: no
// budget). Ids beyond the vocabulary are left clear. It returns the number allowed.
func (m *Matcher) FillMask(dst []uint64, remaining int) int {
	if m.done {
		clear(dst)
		return 0
	}
	n := 0
	if remaining > 0 {
		n = m.fill(dst, int32(min(remaining, math.MaxInt32/4)))
	}
	if n == 0 {
		// No budget, or it left no way out (the grammar's shortest completion is
		// longer than what is left): allow what the grammar allows; such an output
		// ends by length.
		n = m.fill(dst, noBudget)
	}
	return n
}

func (m *Matcher) fill(dst []uint64, remaining int32) int {
	bg := m.bg
	words := bg.words
	dst = dst[:words]
	clear(dst)
	end := false
	if len(m.cfgs) == 1 {
		end = m.fillOne(dst, m.cfgs[0], remaining)
	} else {
		if cap(m.bits) < words {
			m.bits = make([]uint64, words)
		}
		scratch := m.bits[:words]
		for _, c := range m.cfgs {
			clear(scratch)
			end = m.fillOne(scratch, c, remaining) || end
			for i, w := range scratch {
				dst[i] |= w
			}
		}
	}
	if end {
		for _, id := range bg.v.eos {
			dst[id>>6] |= 1 << (id & 63)
		}
	}
	count := 0
	for _, w := range dst {
		count += bits.OnesCount64(w)
	}
	return count
}

// fillOne sets, in the clear bitmap dst, the tokens configuration c allows, and says
// whether c may end here.
func (m *Matcher) fillOne(dst []uint64, c cfg, remaining int32) bool {
	bg := m.bg
	base := addDist(bg.dist[c.node], m.fs.dist(c.stack))
	a := remaining - 2 - base // a token may raise the distance to acceptance by at most a
	if remaining == noBudget || base >= inf {
		a = math.MaxInt32
	}
	short, long := bg.tables[bg.eqc[c.node]], bg.longTable(c.node)
	addTable(dst, short, a, true)
	addTable(dst, long, a, false)
	if c.stack >= 0 && len(short.dep)+len(long.dep) > 0 {
		e := bg.depEntry(c.node, m.fs.f[c.stack].ret)
		for _, x := range e.acc {
			if x.d <= a {
				dst[x.tok>>6] |= 1 << (x.tok & 63)
			}
		}
		for _, tok := range e.deeper {
			if m.simulate(c, tok, remaining) {
				dst[tok>>6] |= 1 << (tok & 63)
			}
		}
	}
	return base == 0
}

// addTable sets t's tokens whose distance change is at most a. first: dst is clear
// and nothing else has been set yet (a dense table may be copied).
func addTable(dst []uint64, t *table, a int32, first bool) {
	set := func(tok int32) { dst[tok>>6] |= 1 << (tok & 63) }
	if a < 0 {
		// Only tokens that bring acceptance closer by at least -a.
		for _, p := range t.prog {
			if p.d > a {
				break
			}
			set(p.tok)
		}
		return
	}
	switch {
	case t.bits != nil && first:
		copy(dst, t.bits)
	case t.bits != nil:
		for i, w := range t.bits {
			dst[i] |= w
		}
	default:
		for _, tok := range t.list {
			set(tok)
		}
	}
	// Growers are sorted by delta, largest first: clear those beyond a. (A grower's
	// bit was set by this table alone: the short and long tables are disjoint.)
	for _, g := range t.grow {
		if g.d <= a {
			break
		}
		dst[g.tok>>6] &^= 1 << (g.tok & 63)
	}
}

// noBudget disables the budget check.
const noBudget = math.MaxInt32

// simulate runs tok from configuration c with the whole stack and says whether it is
// accepted within the budget.
func (m *Matcher) simulate(c cfg, tok int32, remaining int32) bool {
	// The matcher's own frame store is extended (interning keeps it small); the
	// resulting configurations are discarded.
	cur := append(m.tmp1[:0], c)
	nxt := m.tmp2[:0]
	for _, b := range []byte(m.bg.v.pieces[tok]) {
		nxt, _ = m.bg.advance(&m.fs, cur, b, nxt[:0])
		cur, nxt = nxt, cur
		if len(cur) == 0 {
			break
		}
	}
	m.tmp1, m.tmp2 = cur, nxt
	return len(cur) > 0 && (remaining == noBudget || m.bg.minDist(&m.fs, cur) <= remaining-2)
}

// Allowed reports whether tok is allowed next with remaining tokens left (a
// convenience for tests; FillMask is the fast path).
func (m *Matcher) Allowed(tok int32, remaining int) bool {
	if cap(m.bits) < m.bg.words {
		m.bits = make([]uint64, m.bg.words)
	}
	m.FillMask(m.bits[:m.bg.words], remaining)
	return tok >= 0 && int(tok) < m.bg.v.n && m.bits[tok>>6]&(1<<(tok&63)) != 0
}

// Words is the bitmap length FillMask needs.
func (m *Matcher) Words() int { return m.bg.words }

// ApplyMask sets logits[i] to -Inf for every i whose bit in allowed is clear
// (including ids beyond the bitmap). Its cost follows the mask's shape: words with no
// allowed token are filled by block copies, words with a few disallowed tokens touch
// only those.
func ApplyMask(logits []float32, allowed []uint64) {
	n := len(logits)
	for w := 0; w*64 < n; w++ {
		var word uint64
		if w < len(allowed) {
			word = allowed[w]
		}
		base := w * 64
		switch {
		case word == ^uint64(0):
			continue
		case word == 0:
			// A run of empty words: one copy.
			end := w + 1
			for end*64 < n && (end >= len(allowed) || allowed[end] == 0) {
				end++
			}
			fillNegInf(logits[base:min(end*64, n)])
			w = end - 1
		default:
			seg := logits[base:min(base+64, n)]
			inv := ^word
			for inv != 0 {
				i := bits.TrailingZeros64(inv)
				if i >= len(seg) {
					break
				}
				seg[i] = negInf32
				inv &= inv - 1
			}
		}
	}
}

var (
	negInf32  = float32(math.Inf(-1))
	negInfBuf = func() []float32 {
		b := make([]float32, 4096)
		for i := range b {
			b[i] = negInf32
		}
		return b
	}()
)

func fillNegInf(s []float32) {
	for len(s) > 0 {
		k := copy(s, negInfBuf)
		s = s[k:]
	}
}

// Gather appends the allowed ids (ascending) and their logits to ids and vals: the
// compact form a sampler can work on when not most tokens are allowed (its cost
// follows the allowed count, not the vocabulary). Ids beyond logits are skipped.
func Gather(logits []float32, allowed []uint64, ids []int32, vals []float32) ([]int32, []float32) {
	n := 0
	for _, w := range allowed {
		n += bits.OnesCount64(w)
	}
	ids, vals = slices.Grow(ids, n), slices.Grow(vals, n)
	k0 := len(ids)
	ids, vals = ids[:k0+n], vals[:k0+n]
	k := k0
	for w, word := range allowed {
		base := int32(w * 64)
		for word != 0 {
			i := base + int32(bits.TrailingZeros64(word))
			word &= word - 1
			if int(i) >= len(logits) {
				return ids[:k], vals[:k]
			}
			ids[k], vals[k] = i, logits[i]
			k++
		}
	}
	return ids[:k], vals[:k]
}
