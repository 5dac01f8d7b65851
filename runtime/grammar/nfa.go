package grammar

import (
	"fmt"
	"hash/maphash"
	"slices"
	"unicode/utf8"
)

// The automata are built in three layers:
//
//   - an NFA over bytes (Thompson construction: epsilon edges, byte-range edges and
//     call edges that enter another rule), which the regex and JSON Schema compilers
//     write into;
//   - a DFA per rule (subset construction over bytes; a call is one more symbol), also
//     used stand-alone for string constraints that must be intersected (pattern ∩
//     format ∩ length) before they are embedded back into a rule;
//   - the compiled Grammar: every rule's DFA nodes numbered globally, transitions in a
//     dense table over byte classes.
//
// A rule is a recursive sub-language entered by a call and left when its DFA reaches
// an accepting node (the caller continues at the call's return node). Rules exist only
// where the language is recursive (generic JSON values, recursive $ref) or where a
// shared body keeps the automaton small; everything else is inlined.

// errTooLarge reports an automaton over its size cap.
type errTooLarge struct{ what string }

func (e errTooLarge) Error() string { return e.what }

type bedge struct {
	lo, hi byte
	to     int32
}

type ncall struct {
	rule int32 // callee
	to   int32 // where the caller continues (NFA state, or DFA node once determinized)
}

// nfa is a pool of states; fragments of it are linked by epsilon edges.
type nfa struct {
	eps   [][]int32
	edges [][]bedge
	calls [][]ncall
	max   int // state cap
}

// frag is a piece of automaton with one entry and one exit state (the exit has no
// outgoing edges until the fragment is linked to what follows).
type frag struct{ s, e int32 }

func (a *nfa) state() int32 {
	if a.max > 0 && len(a.eps) >= a.max {
		panic(errTooLarge{fmt.Sprintf("the automaton exceeds %d states", a.max)})
	}
	a.eps = append(a.eps, nil)
	a.edges = append(a.edges, nil)
	a.calls = append(a.calls, nil)
	return int32(len(a.eps) - 1)
}

func (a *nfa) link(from, to int32) { a.eps[from] = append(a.eps[from], to) }

func (a *nfa) empty() frag {
	s := a.state()
	return frag{s, s}
}

// none is a fragment that matches nothing (its exit is unreachable).
func (a *nfa) none() frag { return frag{a.state(), a.state()} }

func (a *nfa) rng(lo, hi byte) frag {
	s, e := a.state(), a.state()
	a.edges[s] = append(a.edges[s], bedge{lo, hi, e})
	return frag{s, e}
}

// set matches one byte from a list of ranges.
func (a *nfa) set(rs ...[2]byte) frag {
	s, e := a.state(), a.state()
	for _, r := range rs {
		a.edges[s] = append(a.edges[s], bedge{r[0], r[1], e})
	}
	return frag{s, e}
}

func (a *nfa) lit(s string) frag {
	f := a.empty()
	cur := f.s
	for i := 0; i < len(s); i++ {
		n := a.state()
		a.edges[cur] = append(a.edges[cur], bedge{s[i], s[i], n})
		cur = n
	}
	f.e = cur
	return f
}

func (a *nfa) call(rule int32) frag {
	s, e := a.state(), a.state()
	a.calls[s] = append(a.calls[s], ncall{rule, e})
	return frag{s, e}
}

func (a *nfa) seq(fs ...frag) frag {
	if len(fs) == 0 {
		return a.empty()
	}
	for i := 1; i < len(fs); i++ {
		a.link(fs[i-1].e, fs[i].s)
	}
	return frag{fs[0].s, fs[len(fs)-1].e}
}

func (a *nfa) alt(fs ...frag) frag {
	if len(fs) == 1 {
		return fs[0]
	}
	s, e := a.state(), a.state()
	for _, f := range fs {
		a.link(s, f.s)
		a.link(f.e, e)
	}
	return frag{s, e}
}

func (a *nfa) opt(f frag) frag {
	s, e := a.state(), a.state()
	a.link(s, f.s)
	a.link(f.e, e)
	a.link(s, e)
	return frag{s, e}
}

// star is f*.
func (a *nfa) star(f frag) frag {
	s, e := a.state(), a.state()
	a.link(s, f.s)
	a.link(f.e, s)
	a.link(s, e)
	return frag{s, e}
}

// plus is f+ (one copy of f).
func (a *nfa) plus(f frag) frag {
	e := a.state()
	a.link(f.e, f.s)
	a.link(f.e, e)
	return frag{f.s, e}
}

// repeat is f{lo,hi} (hi < 0: unbounded), built from fresh copies made by mk.
func (a *nfa) repeat(mk func() frag, lo, hi int) frag {
	var parts []frag
	for i := 0; i < lo; i++ {
		parts = append(parts, mk())
	}
	switch {
	case hi < 0:
		parts = append(parts, a.star(mk()))
	case hi > lo:
		// Nested optionals: (f (f (f)?)?)? keeps the state count linear.
		var tail frag
		for i := hi - lo; i > 0; i-- {
			if i == hi-lo {
				tail = a.opt(mk())
			} else {
				tail = a.opt(a.seq(mk(), tail))
			}
		}
		parts = append(parts, tail)
	}
	return a.seq(parts...)
}

// runes matches one character from sorted, non-overlapping rune ranges, in the given
// encoding (raw UTF-8, or as the canonical escape or raw bytes inside a JSON string).
func (a *nfa) runes(rs []rune, enc encoding) frag {
	var out []frag
	for i := 0; i+1 < len(rs); i += 2 {
		lo, hi := rs[i], rs[i+1]
		if enc == encJSON {
			for lo <= hi && lo < 0x20 {
				out = append(out, a.lit(jsonEscape(lo)))
				lo++
			}
			for _, c := range []rune{'"', '\\'} {
				if lo <= c && c <= hi {
					if lo < c {
						out = append(out, a.utf8Range(lo, c-1)...)
					}
					out = append(out, a.lit(jsonEscape(c)))
					lo = c + 1
				}
			}
		}
		if lo <= hi {
			out = append(out, a.utf8Range(lo, hi)...)
		}
	}
	if len(out) == 0 {
		return a.none()
	}
	return a.alt(out...)
}

type encoding int

const (
	encRaw  encoding = iota // the characters' UTF-8 bytes
	encJSON                 // inside a JSON string: canonical escapes for " \ and controls
)

// jsonEscape is the canonical JSON escape of a character that needs one.
func jsonEscape(r rune) string {
	switch r {
	case '"':
		return `\"`
	case '\\':
		return `\\`
	case '\b':
		return `\b`
	case '\f':
		return `\f`
	case '\n':
		return `\n`
	case '\r':
		return `\r`
	case '\t':
		return `\t`
	}
	return fmt.Sprintf(`\u%04x`, r)
}

// utf8Range returns fragments matching the UTF-8 encodings of [lo, hi] (surrogates
// excluded), each a sequence of byte ranges.
func (a *nfa) utf8Range(lo, hi rune) []frag {
	var out []frag
	for _, seq := range utf8Sequences(lo, hi) {
		var parts []frag
		for _, r := range seq {
			parts = append(parts, a.rng(r[0], r[1]))
		}
		out = append(out, a.seq(parts...))
	}
	return out
}

// utf8Sequences splits [lo, hi] into ranges whose UTF-8 encodings are products of byte
// ranges (the method of RE2 and Rust's regex-syntax).
func utf8Sequences(lo, hi rune) [][][2]byte {
	var out [][][2]byte
	var split func(lo, hi rune)
	split = func(lo, hi rune) {
		if lo > hi {
			return
		}
		if lo <= 0xDFFF && hi >= 0xD800 { // no surrogates
			split(lo, 0xD7FF)
			split(0xE000, hi)
			return
		}
		for _, m := range []rune{0x7F, 0x7FF, 0xFFFF} {
			if lo <= m && hi > m {
				split(lo, m)
				split(m+1, hi)
				return
			}
		}
		if hi > utf8.MaxRune {
			hi = utf8.MaxRune
		}
		n := utf8.RuneLen(lo)
		for i := 1; i < n; i++ {
			m := rune(1)<<(6*i) - 1
			if lo&^m != hi&^m {
				if lo&m != 0 {
					split(lo, lo|m)
					split((lo|m)+1, hi)
					return
				}
				if hi&m != m {
					split(lo, (hi&^m)-1)
					split(hi&^m, hi)
					return
				}
			}
		}
		var bl, bh [4]byte
		utf8.EncodeRune(bl[:], lo)
		utf8.EncodeRune(bh[:], hi)
		seq := make([][2]byte, n)
		for i := 0; i < n; i++ {
			seq[i] = [2]byte{bl[i], bh[i]}
		}
		out = append(out, seq)
	}
	split(lo, hi)
	return out
}

// --- determinization ---

type drange struct {
	lo, hi byte
	to     int32
}

// dfa is a deterministic automaton in range form.
type dfa struct {
	start  int32
	accept []bool
	out    [][]drange // sorted, disjoint
	calls  [][]ncall  // call edges (rule DFAs only); to = DFA node
}

func (d *dfa) size() int { return len(d.accept) }

// determinize builds the DFA of the fragment f of a (subset construction). Calls are
// symbols like bytes: a DFA node's call edges go to the node of all their targets.
func (a *nfa) determinize(f frag, maxNodes int) *dfa {
	d := &dfa{}
	index := newSetIndex()
	var sets [][]int32
	mark := make([]bool, len(a.eps))
	closure := func(seed []int32) []int32 {
		stack := append([]int32(nil), seed...)
		var set []int32
		for _, s := range seed {
			mark[s] = true
		}
		for len(stack) > 0 {
			s := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			set = append(set, s)
			for _, t := range a.eps[s] {
				if !mark[t] {
					mark[t] = true
					stack = append(stack, t)
				}
			}
		}
		for _, s := range set {
			mark[s] = false
		}
		slices.Sort(set)
		return set
	}
	add := func(set []int32) int32 {
		if id, ok := index.find(set); ok {
			return id
		}
		if maxNodes > 0 && len(sets) >= maxNodes {
			panic(errTooLarge{fmt.Sprintf("the automaton exceeds %d states", maxNodes)})
		}
		id := index.add(set)
		sets = append(sets, set)
		acc := false
		for _, s := range set {
			if s == f.e {
				acc = true
			}
		}
		d.accept = append(d.accept, acc)
		d.out = append(d.out, nil)
		d.calls = append(d.calls, nil)
		return id
	}
	d.start = add(closure([]int32{f.s}))
	var bounds []int
	var targets []int32
	for i := 0; i < len(sets); i++ {
		set := sets[i]
		// Byte edges: split the byte space at every edge boundary.
		bounds = bounds[:0]
		for _, s := range set {
			for _, e := range a.edges[s] {
				bounds = append(bounds, int(e.lo), int(e.hi)+1)
			}
		}
		if len(bounds) > 0 {
			slices.Sort(bounds)
			bounds = slices.Compact(bounds)
			for j := 0; j+1 < len(bounds); j++ {
				lo, hi := bounds[j], bounds[j+1]-1
				targets = targets[:0]
				for _, s := range set {
					for _, e := range a.edges[s] {
						if int(e.lo) <= lo && hi <= int(e.hi) {
							targets = append(targets, e.to)
						}
					}
				}
				if len(targets) == 0 {
					continue
				}
				to := add(closure(dedup(targets)))
				out := d.out[i]
				if n := len(out); n > 0 && out[n-1].to == to && int(out[n-1].hi)+1 == lo {
					out[n-1].hi = byte(hi)
				} else {
					out = append(out, drange{byte(lo), byte(hi), to})
				}
				d.out[i] = out
			}
		}
		// Call edges, grouped by callee.
		var rules []int32
		for _, s := range set {
			for _, c := range a.calls[s] {
				rules = append(rules, c.rule)
			}
		}
		slices.Sort(rules)
		rules = slices.Compact(rules)
		for _, r := range rules {
			targets = targets[:0]
			for _, s := range set {
				for _, c := range a.calls[s] {
					if c.rule == r {
						targets = append(targets, c.to)
					}
				}
			}
			d.calls[i] = append(d.calls[i], ncall{r, add(closure(dedup(targets)))})
		}
	}
	return d
}

func dedup(s []int32) []int32 {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// step follows byte b from node n, -1 when there is no edge.
func (d *dfa) step(n int32, b byte) int32 {
	for _, r := range d.out[n] {
		if b < r.lo {
			return -1
		}
		if b <= r.hi {
			return r.to
		}
	}
	return -1
}

// intersect is the product automaton of two call-free DFAs.
func intersect(x, y *dfa, maxNodes int) *dfa {
	d := &dfa{}
	index := map[[2]int32]int32{}
	var pairs [][2]int32
	add := func(p [2]int32) int32 {
		if id, ok := index[p]; ok {
			return id
		}
		if maxNodes > 0 && len(pairs) >= maxNodes {
			panic(errTooLarge{fmt.Sprintf("the automaton exceeds %d states", maxNodes)})
		}
		id := int32(len(pairs))
		index[p] = id
		pairs = append(pairs, p)
		d.accept = append(d.accept, x.accept[p[0]] && y.accept[p[1]])
		d.out = append(d.out, nil)
		d.calls = append(d.calls, nil)
		return id
	}
	d.start = add([2]int32{x.start, y.start})
	for i := 0; i < len(pairs); i++ {
		p := pairs[i]
		xo, yo := x.out[p[0]], y.out[p[1]]
		for j, k := 0, 0; j < len(xo) && k < len(yo); {
			a, b := xo[j], yo[k]
			lo, hi := max(a.lo, b.lo), min(a.hi, b.hi)
			if lo <= hi {
				to := add([2]int32{a.to, b.to})
				d.out[i] = append(d.out[i], drange{lo, hi, to})
			}
			if a.hi < b.hi {
				j++
			} else {
				k++
			}
		}
	}
	return d.trim()
}

// complement is the DFA of every byte string d rejects (d must be call-free).
func (d *dfa) complement() *dfa {
	c := &dfa{start: d.start}
	n := int32(d.size())
	sink := n
	for i := int32(0); i <= n; i++ {
		var out []drange
		if i < n {
			next := 0
			for _, r := range d.out[i] {
				if int(r.lo) > next {
					out = append(out, drange{byte(next), r.lo - 1, sink})
				}
				out = append(out, r)
				next = int(r.hi) + 1
			}
			if next <= 255 {
				out = append(out, drange{byte(next), 255, sink})
			}
			c.accept = append(c.accept, !d.accept[i])
		} else {
			out = []drange{{0, 255, sink}}
			c.accept = append(c.accept, true)
		}
		c.out = append(c.out, out)
		c.calls = append(c.calls, nil)
	}
	return c
}

// trim drops the nodes that cannot reach an accepting node (call-free DFAs) and
// renumbers; the start survives even when dead (then the language is empty).
func (d *dfa) trim() *dfa {
	n := d.size()
	rev := make([][]int32, n)
	for i := range d.out {
		for _, r := range d.out[i] {
			rev[r.to] = append(rev[r.to], int32(i))
		}
	}
	live := make([]bool, n)
	var stack []int32
	for i, acc := range d.accept {
		if acc {
			live[i] = true
			stack = append(stack, int32(i))
		}
	}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, p := range rev[s] {
			if !live[p] {
				live[p] = true
				stack = append(stack, p)
			}
		}
	}
	live[d.start] = true
	id := make([]int32, n)
	t := &dfa{}
	for i := 0; i < n; i++ {
		id[i] = -1
		if live[i] {
			id[i] = int32(len(t.accept))
			t.accept = append(t.accept, d.accept[i])
		}
	}
	t.start = id[d.start]
	t.out = make([][]drange, len(t.accept))
	t.calls = make([][]ncall, len(t.accept))
	for i := 0; i < n; i++ {
		if id[i] < 0 {
			continue
		}
		for _, r := range d.out[i] {
			if id[r.to] >= 0 {
				t.out[id[i]] = append(t.out[id[i]], drange{r.lo, r.hi, id[r.to]})
			}
		}
	}
	return t
}

// embed copies a call-free DFA into the NFA as a fragment.
func (a *nfa) embed(d *dfa) frag {
	base := make([]int32, d.size())
	for i := range base {
		base[i] = a.state()
	}
	e := a.state()
	for i := range base {
		for _, r := range d.out[i] {
			a.edges[base[i]] = append(a.edges[base[i]], bedge{r.lo, r.hi, base[r.to]})
		}
		if d.accept[i] {
			a.link(base[i], e)
		}
	}
	return frag{base[d.start], e}
}

// isEmpty reports whether a trimmed DFA accepts nothing.
func (d *dfa) isEmpty() bool {
	return !d.accept[d.start] && len(d.out[d.start]) == 0
}

// setIndex numbers distinct []int32 keys (hashed, compared in full on collision).
type setIndex struct {
	seed maphash.Seed
	by   map[uint64][]int32 // hash → ids
	keys [][]int32
}

func newSetIndex() *setIndex {
	return &setIndex{seed: maphash.MakeSeed(), by: map[uint64][]int32{}}
}

func (x *setIndex) find(k []int32) (int32, bool) {
	for _, id := range x.by[hashInts(x.seed, k)] {
		if slices.Equal(x.keys[id], k) {
			return id, true
		}
	}
	return -1, false
}

// add stores k (which must not be present; the index keeps k itself).
func (x *setIndex) add(k []int32) int32 {
	id := int32(len(x.keys))
	h := hashInts(x.seed, k)
	x.keys = append(x.keys, k)
	x.by[h] = append(x.by[h], id)
	return id
}

func (x *setIndex) len() int { return len(x.keys) }

func (x *setIndex) reset() {
	clear(x.by)
	x.keys = x.keys[:0]
}
