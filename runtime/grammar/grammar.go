package grammar

import (
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
)

// Default caps on a compiled grammar (Options.MaxStates overrides the DFA cap).
const (
	DefaultMaxStates = 1 << 16 // DFA nodes over all rules
	maxNFAStates     = 1 << 21
)

// inf is the distance of a node that cannot reach acceptance.
const inf = int32(1 << 30)

// Grammar is a compiled constraint: a set of byte-level DFAs (one per rule) whose
// language is the set of outputs allowed. It does not depend on a vocabulary; a
// Matcher binds it to one (the per-vocabulary tables are built once and cached). A
// Grammar is immutable and safe for concurrent use.
type Grammar struct {
	desc      string
	nclass    int
	class     [256]uint8
	trans     []int32   // node*nclass + class → node, -1 none
	accept    []bool    // per node
	calls     [][]gcall // per node
	nodeRule  []int32
	ruleStart []int32
	reach     []bool // reachable from the root's start

	mu    sync.Mutex
	bound map[*Vocab]*boundGrammar
}

// gcall is a call edge: enter the rule whose start node is start; on its acceptance
// continue at ret.
type gcall struct{ start, ret int32 }

// String describes the grammar (its kind and size) for logs.
func (g *Grammar) String() string {
	return fmt.Sprintf("%s (%d states, %d rules, %d byte classes)", g.desc, len(g.accept), len(g.ruleStart), g.nclass)
}

// States is the number of DFA nodes.
func (g *Grammar) States() int { return len(g.accept) }

// builder assembles a grammar's rules in one NFA.
type builder struct {
	a         nfa
	rules     []frag // rule 0 is the root
	maxStates int
}

func newBuilder(maxStates int) *builder {
	if maxStates <= 0 {
		maxStates = DefaultMaxStates
	}
	b := &builder{maxStates: maxStates}
	b.a.max = maxNFAStates
	b.rules = append(b.rules, frag{}) // the root, set by finish
	return b
}

// newRule reserves a rule; its body is set later with setRule.
func (b *builder) newRule() int32 {
	b.rules = append(b.rules, frag{-1, -1})
	return int32(len(b.rules) - 1)
}

func (b *builder) setRule(r int32, f frag) { b.rules[r] = f }

// catch turns the builders' size panics into errors.
func catch(err *error) {
	if r := recover(); r != nil {
		if e, ok := r.(errTooLarge); ok {
			*err = fmt.Errorf("grammar too large: %s", e.what)
			return
		}
		panic(r)
	}
}

// finish determinizes every rule and lays the grammar out.
func (b *builder) finish(root frag, desc string) (g *Grammar, err error) {
	defer catch(&err)
	b.rules[0] = root
	dfas := make([]*dfa, len(b.rules))
	total := 0
	for r, f := range b.rules {
		if f.s < 0 {
			return nil, fmt.Errorf("grammar: rule %d has no body", r)
		}
		dfas[r] = b.a.determinize(f, b.maxStates-total)
		total += dfas[r].size()
	}
	off := make([]int32, len(dfas)+1)
	for r, d := range dfas {
		off[r+1] = off[r] + int32(d.size())
	}
	n := int(off[len(dfas)])
	g = &Grammar{desc: desc, accept: make([]bool, n), calls: make([][]gcall, n), nodeRule: make([]int32, n),
		ruleStart: make([]int32, len(dfas))}
	for r, d := range dfas {
		g.ruleStart[r] = off[r] + d.start
	}
	// Byte classes: the intervals between range boundaries, merged when every node
	// treats them alike.
	var cut [257]bool
	cut[0], cut[256] = true, true
	for _, d := range dfas {
		for _, out := range d.out {
			for _, rg := range out {
				cut[rg.lo] = true
				cut[int(rg.hi)+1] = true
			}
		}
	}
	var starts []int
	for i := 0; i < 256; i++ {
		if cut[i] {
			starts = append(starts, i)
		}
	}
	// Column of each interval: its target from every node.
	col := make([][]int32, len(starts))
	for k, lo := range starts {
		c := make([]int32, n)
		for r, d := range dfas {
			for i := range d.out {
				c[off[r]+int32(i)] = -1
				if t := d.step(int32(i), byte(lo)); t >= 0 {
					c[off[r]+int32(i)] = off[r] + t
				}
			}
		}
		col[k] = c
	}
	seed := maphash.MakeSeed()
	byHash := map[uint64][]int{}
	classOf := make([]int, len(starts))
	var reps []int
	for k := range starts {
		h := hashInts(seed, col[k])
		found := -1
		for _, j := range byHash[h] {
			if slices.Equal(col[reps[j]], col[k]) {
				found = j
				break
			}
		}
		if found < 0 {
			found = len(reps)
			reps = append(reps, k)
			byHash[h] = append(byHash[h], found)
		}
		classOf[k] = found
	}
	g.nclass = len(reps)
	for k, lo := range starts {
		hi := 256
		if k+1 < len(starts) {
			hi = starts[k+1]
		}
		for c := lo; c < hi; c++ {
			g.class[c] = uint8(classOf[k])
		}
	}
	if g.nclass > 256 {
		return nil, errors.New("grammar: too many byte classes")
	}
	g.trans = make([]int32, n*g.nclass)
	for cls, k := range reps {
		for node := 0; node < n; node++ {
			g.trans[node*g.nclass+cls] = col[k][node]
		}
	}
	for r, d := range dfas {
		for i := range d.accept {
			node := off[r] + int32(i)
			g.accept[node] = d.accept[i]
			g.nodeRule[node] = int32(r)
			for _, c := range d.calls[i] {
				g.calls[node] = append(g.calls[node], gcall{start: g.ruleStart[c.rule], ret: off[r] + c.to})
			}
		}
	}
	if err := g.prune(); err != nil {
		return nil, err
	}
	return g, nil
}

func hashInts(seed maphash.Seed, v []int32) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	var buf [4096]byte
	for len(v) > 0 {
		k := min(len(v), len(buf)/4)
		for i, x := range v[:k] {
			buf[4*i], buf[4*i+1], buf[4*i+2], buf[4*i+3] = byte(x), byte(x>>8), byte(x>>16), byte(x>>24)
		}
		h.Write(buf[:4*k])
		v = v[k:]
	}
	return h.Sum64()
}

// distances computes, for every node, the fewest bytes that reach acceptance of its
// rule (a call costs its rule's shortest length), counting only the byte classes
// usable[c] allows. inf marks nodes that cannot finish.
func (g *Grammar) distances(usable []bool) []int32 {
	n := len(g.accept)
	dist := make([]int32, n)
	for i := range dist {
		dist[i] = inf
		if g.accept[i] {
			dist[i] = 0
		}
	}
	// Bellman-Ford sweeps in reverse node order (nodes are numbered breadth-first from
	// each rule's start, so most distances settle in one or two sweeps).
	for changed := true; changed; {
		changed = false
		for i := n - 1; i >= 0; i-- {
			best := dist[i]
			row := g.trans[i*g.nclass : (i+1)*g.nclass]
			for c, t := range row {
				if t >= 0 && usable[c] && dist[t] < inf && dist[t]+1 < best {
					best = dist[t] + 1
				}
			}
			for _, c := range g.calls[i] {
				if dist[c.start] < inf && dist[c.ret] < inf && dist[c.start]+dist[c.ret] < best {
					best = dist[c.start] + dist[c.ret]
				}
			}
			if best < dist[i] {
				dist[i] = best
				changed = true
			}
		}
	}
	return dist
}

// prune removes the edges into nodes that cannot finish, checks that the language is
// not empty and that no rule can call itself before consuming a byte, and marks the
// reachable nodes.
func (g *Grammar) prune() error {
	// Left recursion: a cycle among rules through calls at their start nodes.
	state := make([]int8, len(g.ruleStart))
	ruleOf := map[int32]int{}
	for r, s := range g.ruleStart {
		ruleOf[s] = r
	}
	var visit func(r int) error
	visit = func(r int) error {
		state[r] = 1
		for _, c := range g.calls[g.ruleStart[r]] {
			q := ruleOf[c.start]
			switch state[q] {
			case 1:
				return ErrLeftRecursion
			case 0:
				if err := visit(q); err != nil {
					return err
				}
			}
		}
		state[r] = 2
		return nil
	}
	for r := range g.ruleStart {
		if state[r] == 0 {
			if err := visit(r); err != nil {
				return err
			}
		}
	}
	all := make([]bool, g.nclass)
	for i := range all {
		all[i] = true
	}
	dist := g.distances(all)
	if dist[g.ruleStart[0]] >= inf {
		return ErrEmpty
	}
	for i := range g.accept {
		row := g.trans[i*g.nclass : (i+1)*g.nclass]
		for c, t := range row {
			if t >= 0 && dist[t] >= inf {
				row[c] = -1
			}
		}
		k := 0
		for _, c := range g.calls[i] {
			if dist[c.start] < inf && dist[c.ret] < inf {
				g.calls[i][k] = c
				k++
			}
		}
		g.calls[i] = g.calls[i][:k]
	}
	for r, s := range g.ruleStart {
		if r > 0 && g.accept[s] {
			return fmt.Errorf("grammar: rule %d accepts the empty string", r)
		}
	}
	g.reach = make([]bool, len(g.accept))
	stack := []int32{g.ruleStart[0]}
	g.reach[g.ruleStart[0]] = true
	push := func(t int32) {
		if t >= 0 && !g.reach[t] {
			g.reach[t] = true
			stack = append(stack, t)
		}
	}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, t := range g.trans[int(s)*g.nclass : (int(s)+1)*g.nclass] {
			push(t)
		}
		for _, c := range g.calls[s] {
			push(c.start)
			push(c.ret)
		}
	}
	return nil
}

// Errors of grammars that cannot be used.
var (
	ErrEmpty         = errors.New("no output satisfies the constraint")
	ErrLeftRecursion = errors.New("a recursive reference is reached again before any output (left recursion)")
)
