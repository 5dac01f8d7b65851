package grammar

import (
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// boundGrammar is a Grammar bound to a Vocab: for every reachable DFA node, the
// tokens it accepts (computed once by walking the vocabulary's trie), so that a step's
// mask is a table lookup plus a few corrections.
//
// Nodes that no token of up to shortLen bytes can tell apart — the same transitions,
// into the same classes, with the same distance changes, that far — share one table (a
// bounded Moore refinement), so long counted chains (maxLength, maxItems) cost a table
// per distinct neighbourhood, not per node. Tokens longer than shortLen are checked per
// node class of a full-depth refinement (a walk of a small trie each).
type boundGrammar struct {
	g      *Grammar
	v      *Vocab
	dist   []int32 // fewest single-byte tokens to reach acceptance of the node's rule
	eqc    []int32 // node → table
	tables []*table
	final  []bool      // accepting with no way on: a configuration there returns at once
	loop   [][4]uint64 // per node: the bytes that lead back to it
	eql    []int32     // node → long table
	longs  []*table
	words  int // bitmap words per mask

	dep sync.Map // depKey → *depEntry, built on first use

	BindTime time.Duration
}

// table is what one node (class) allows, independent of the stack below it.
type table struct {
	bits []uint64 // accepted tokens as a bitmap (dense tables), else nil
	list []int32  // accepted tokens (sparse tables)
	n    int      // accepted count
	dep  []int32  // tokens that leave the node's rule before they end
	grow []tokDelta
	prog []tokDelta
}

// tokDelta is a token and how much it changes the distance to acceptance.
type tokDelta struct{ tok, d int32 }

type depKey struct{ node, ret int32 }

// depEntry resolves a node's dependent tokens against the frame above: accepted ones
// (with their distance change relative to node + ret) and those that leave the ret
// rule as well (resolved by full simulation each time).
type depEntry struct {
	acc    []tokDelta
	deeper []int32
}

// bind returns g's tables for v, building them on first use.
func (g *Grammar) bind(v *Vocab) *boundGrammar {
	g.mu.Lock()
	defer g.mu.Unlock()
	if bg, ok := g.bound[v]; ok {
		return bg
	}
	start := time.Now()
	n := len(g.accept)
	bg := &boundGrammar{g: g, v: v, words: (v.n + 63) / 64, final: make([]bool, n), loop: make([][4]uint64, n)}
	usable := make([]bool, g.nclass)
	for b := 0; b < 256; b++ {
		if v.single[b] >= 0 {
			usable[g.class[b]] = true
		}
	}
	bg.dist = g.distances(usable)
	for i := 0; i < n; i++ {
		row := g.trans[i*g.nclass : (i+1)*g.nclass]
		none := len(g.calls[i]) == 0
		for b := 0; b < 256; b++ {
			t := row[g.class[b]]
			if t == int32(i) {
				bg.loop[i][b>>6] |= 1 << (b & 63)
			}
			none = none && t < 0
		}
		bg.final[i] = g.accept[i] && none
	}
	bg.classify()
	fill := func(tables []*table, classes []int32, t *trie, dense bool) {
		rep := make([]int32, len(tables))
		for i := range rep {
			rep[i] = -1
		}
		for n, c := range classes {
			if c >= 0 && rep[c] < 0 {
				rep[c] = int32(n)
			}
		}
		// The walks are independent: spread them over the cores.
		var next atomic.Int64
		var wg sync.WaitGroup
		for k := min(runtime.GOMAXPROCS(0), max(1, len(rep)/8)); k > 0; k-- {
			wg.Go(func() {
				w := newWalker(bg, t, dense)
				for {
					c := int(next.Add(1) - 1)
					if c >= len(rep) {
						return
					}
					if n := rep[c]; bg.final[n] || len(t.toks) == 0 {
						tables[c] = &table{} // final nodes are never walked: the matcher leaves them at once
					} else {
						tables[c] = w.table(n)
					}
				}
			})
		}
		wg.Wait()
	}
	fill(bg.tables, bg.eqc, v.short, true)
	fill(bg.longs, bg.eql, v.long, false)
	// The dependent tokens of every node of a called rule, against every return node
	// of its callers.
	rets := map[int32][]int32{} // callee start → return nodes
	for _, cs := range g.calls {
		for _, c := range cs {
			if !slices.Contains(rets[c.start], c.ret) {
				rets[c.start] = append(rets[c.start], c.ret)
			}
		}
	}
	for node := range g.accept {
		if bg.eqc[node] < 0 || bg.final[node] {
			continue
		}
		if len(bg.tables[bg.eqc[node]].dep)+len(bg.longTable(int32(node)).dep) == 0 {
			continue
		}
		for _, r := range rets[g.ruleStart[g.nodeRule[node]]] {
			bg.depEntry(int32(node), r)
		}
	}
	bg.BindTime = time.Since(start)
	if g.bound == nil {
		g.bound = map[*Vocab]*boundGrammar{}
	}
	g.bound[v] = bg
	return bg
}

// longTable is node n's table for the tokens longer than shortLen.
func (bg *boundGrammar) longTable(n int32) *table { return bg.longs[bg.eql[n]] }

// classify groups reachable nodes that are indistinguishable by any token of up to
// shortLen bytes (eqc), and by any token at all (eql), including the distance changes
// along their edges: a Moore refinement stopped at those depths.
func (bg *boundGrammar) classify() {
	g := bg.g
	n := len(g.accept)
	cls := make([]int32, n)
	next := make([]int32, n)
	count := 0
	for i := range cls {
		switch {
		case !g.reach[i]:
			cls[i] = -1
		case g.accept[i]:
			cls[i] = 1
		default:
			cls[i] = 0
		}
	}
	var arena []int32
	signature := func(i int) []int32 {
		start := len(arena)
		arena = append(arena, cls[i])
		row := g.trans[i*g.nclass : (i+1)*g.nclass]
		d := bg.dist[i]
		for _, t := range row {
			if t < 0 {
				arena = append(arena, -1, 0)
			} else {
				arena = append(arena, cls[t], deltaOf(bg.dist[t], d))
			}
		}
		for _, c := range g.calls[i] {
			arena = append(arena, -2, c.start, cls[c.ret], deltaOf(addDist(bg.dist[c.start], bg.dist[c.ret]), d))
		}
		return arena[start:]
	}
	index := newSetIndex()
	shortRounds := min(shortLen, bg.v.short.depth) + 1
	rounds := max(bg.v.maxLen, 1) + 1
	for r := 0; r < rounds; r++ {
		index.reset()
		arena = arena[:0]
		for i := 0; i < n; i++ {
			if cls[i] < 0 {
				next[i] = -1
				continue
			}
			sig := signature(i)
			id, ok := index.find(sig)
			if !ok {
				id = index.add(sig)
			} else {
				arena = arena[:len(arena)-len(sig)]
			}
			next[i] = id
		}
		cls, next = next, cls
		stable := index.len() == count
		count = index.len()
		if r+1 == shortRounds || stable && bg.eqc == nil {
			bg.eqc = slices.Clone(cls)
			bg.tables = make([]*table, count)
		}
		if stable {
			break
		}
	}
	bg.eql = cls
	bg.longs = make([]*table, count)
}

func deltaOf(after, before int32) int32 {
	if after >= inf || before >= inf {
		return inf
	}
	return after - before
}

func addDist(a, b int32) int32 {
	if a >= inf || b >= inf {
		return inf
	}
	return a + b
}

// --- configurations ---

// cfg is one parse position: a node and the stack of return nodes below it (an index
// into a frame store, -1 for none).
type cfg struct{ node, stack int32 }

type frame struct{ ret, parent, dist int32 }

// frames is an interning store of stacks, so equal stacks have one index.
type frames struct {
	f   []frame
	idx map[[2]int32]int32
}

func (fs *frames) push(ret, parent int32, dist []int32) int32 {
	k := [2]int32{ret, parent}
	if id, ok := fs.idx[k]; ok {
		return id
	}
	if fs.idx == nil {
		fs.idx = map[[2]int32]int32{}
	}
	d := dist[ret]
	if parent >= 0 {
		d = addDist(d, fs.f[parent].dist)
	}
	id := int32(len(fs.f))
	fs.f = append(fs.f, frame{ret, parent, d})
	fs.idx[k] = id
	return id
}

func (fs *frames) reset() {
	fs.f = fs.f[:0]
	clear(fs.idx)
}

func (fs *frames) dist(stack int32) int32 {
	if stack < 0 {
		return 0
	}
	return fs.f[stack].dist
}

// maxConfigs bounds the parse positions followed at once (ambiguous grammars); the
// ones closest to acceptance are kept, which only narrows the language.
const maxConfigs = 64

// advance moves every configuration over byte b. exited reports that some
// configuration needed to return below the bottom of its stack to take b (the token
// continues past the end of the rule the walk started in).
func (bg *boundGrammar) advance(fs *frames, in []cfg, b byte, out []cfg) ([]cfg, bool) {
	exited := false
	g := bg.g
	cls := int(g.class[b])
	var one func(c cfg)
	one = func(c cfg) {
		if t := g.trans[int(c.node)*g.nclass+cls]; t >= 0 {
			out = addCfg(out, cfg{t, c.stack})
		}
		for _, call := range g.calls[c.node] {
			one(cfg{call.start, fs.push(call.ret, c.stack, bg.dist)})
		}
		if g.accept[c.node] {
			if c.stack < 0 {
				exited = true
			} else {
				f := fs.f[c.stack]
				one(cfg{f.ret, f.parent})
			}
		}
	}
	for _, c := range in {
		one(c)
	}
	if len(out) > maxConfigs {
		slices.SortStableFunc(out, func(x, y cfg) int {
			return int(addDist(bg.dist[x.node], fs.dist(x.stack)) - addDist(bg.dist[y.node], fs.dist(y.stack)))
		})
		out = out[:maxConfigs]
	}
	return out, exited
}

func addCfg(s []cfg, c cfg) []cfg {
	if slices.Contains(s, c) {
		return s
	}
	return append(s, c)
}

// minDist is the fewest bytes from any configuration to acceptance.
func (bg *boundGrammar) minDist(fs *frames, cs []cfg) int32 {
	best := inf
	for _, c := range cs {
		best = min(best, addDist(bg.dist[c.node], fs.dist(c.stack)))
	}
	return best
}

// --- the trie walk ---

// run is a stretch of a trie's toks accepted with one distance change.
type run struct{ lo, hi, d int32 }

type walker struct {
	bg    *boundGrammar
	g     *Grammar
	t     *trie
	fs    frames
	dist0 int32
	runs  []run
	dep   [][2]int32 // stretches of toks whose tokens leave the rule
	mark  []uint32   // per token id: gen when accepted (dense walks)
	gen   uint32
	bufs  [][]cfg // per depth
}

func newWalker(bg *boundGrammar, t *trie, dense bool) *walker {
	w := &walker{bg: bg, g: bg.g, t: t, bufs: make([][]cfg, t.depth+2)}
	if dense {
		w.mark = make([]uint32, bg.v.n)
	}
	return w
}

// table walks the trie from node n.
func (w *walker) table(n int32) *table {
	w.fs.reset()
	w.runs, w.dep = w.runs[:0], w.dep[:0]
	w.dist0 = w.bg.dist[n]
	if len(w.g.calls[n]) == 0 {
		w.walk1(0, n)
	} else {
		w.walkN(0, 1, []cfg{{n, -1}})
	}
	toks := w.t.toks
	t := &table{}
	for _, r := range w.runs {
		t.n += int(r.hi - r.lo)
		if r.d == 0 {
			continue
		}
		for _, tok := range toks[r.lo:r.hi] {
			switch {
			case r.d > 0:
				t.grow = append(t.grow, tokDelta{tok, r.d})
			case r.d < 0:
				t.prog = append(t.prog, tokDelta{tok, r.d})
			}
		}
	}
	if len(w.dep) > 0 {
		var accepted func(tok int32) bool
		if w.mark != nil {
			w.gen++
			for _, r := range w.runs {
				for _, tok := range toks[r.lo:r.hi] {
					w.mark[tok] = w.gen
				}
			}
			accepted = func(tok int32) bool { return w.mark[tok] == w.gen }
		} else {
			set := map[int32]bool{}
			for _, r := range w.runs {
				for _, tok := range toks[r.lo:r.hi] {
					set[tok] = true
				}
			}
			accepted = func(tok int32) bool { return set[tok] }
		}
		for _, r := range w.dep {
			for _, tok := range toks[r[0]:r[1]] {
				if !accepted(tok) {
					t.dep = append(t.dep, tok)
				}
			}
		}
		slices.Sort(t.dep)
		t.dep = slices.Compact(t.dep)
	}
	slices.SortFunc(t.grow, func(x, y tokDelta) int { return int(y.d - x.d) })
	slices.SortFunc(t.prog, func(x, y tokDelta) int { return int(x.d - y.d) })
	if t.n*32 >= w.bg.v.n {
		t.bits = make([]uint64, w.bg.words)
		for _, r := range w.runs {
			for _, tok := range toks[r.lo:r.hi] {
				t.bits[tok>>6] |= 1 << (tok & 63)
			}
		}
	} else {
		t.list = make([]int32, 0, t.n)
		for _, r := range w.runs {
			t.list = append(t.list, toks[r.lo:r.hi]...)
		}
		slices.Sort(t.list)
	}
	return t
}

func subset(a, b *[4]uint64) bool {
	return a[0]&^b[0] == 0 && a[1]&^b[1] == 0 && a[2]&^b[2] == 0 && a[3]&^b[3] == 0
}

// walk1 is the common case: one configuration, nothing below it, no calls at n.
func (w *walker) walk1(tn int32, n int32) {
	g, tr, dist := w.g, w.t, w.bg.dist
	nc := g.nclass
	row := g.trans[int(n)*nc : int(n)*nc+nc]
	acc := g.accept[n]
	loop := &w.bg.loop[n]
	for e := tr.edgeStart[tn]; e < tr.edgeEnd[tn]; e++ {
		child := tr.edgeChild[e]
		if acc {
			w.dep = append(w.dep, [2]int32{tr.tokLo[child], tr.tokHi[child]})
		}
		t := row[g.class[tr.edgeByte[e]]]
		if t < 0 {
			continue
		}
		if t == n && !acc && subset(&tr.below[child], loop) {
			// The whole subtree loops on n: accepted, distance unchanged.
			w.runs = append(w.runs, run{tr.tokLo[child], tr.tokHi[child], 0})
			continue
		}
		if lo, here := tr.tokLo[child], tr.tokHere[child]; lo < here {
			w.runs = append(w.runs, run{lo, here, deltaOf(dist[t], w.dist0)})
		}
		if tr.tokHere[child] < tr.tokHi[child] {
			if len(g.calls[t]) == 0 {
				w.walk1(child, t)
			} else {
				w.walkN(child, 1, []cfg{{t, -1}})
			}
		}
	}
}

// walkN follows a set of configurations (calls, stacks, ambiguity).
func (w *walker) walkN(tn int32, depth int, cs []cfg) {
	tr := w.t
	for e := tr.edgeStart[tn]; e < tr.edgeEnd[tn]; e++ {
		child := tr.edgeChild[e]
		next, exited := w.bg.advance(&w.fs, cs, tr.edgeByte[e], w.bufs[depth][:0])
		w.bufs[depth] = next
		if exited {
			w.dep = append(w.dep, [2]int32{tr.tokLo[child], tr.tokHi[child]})
		}
		if len(next) == 0 {
			continue
		}
		if lo, here := tr.tokLo[child], tr.tokHere[child]; lo < here {
			w.runs = append(w.runs, run{lo, here, deltaOf(w.bg.minDist(&w.fs, next), w.dist0)})
		}
		if tr.tokHere[child] < tr.tokHi[child] {
			// The buffer of this depth is reused by the siblings: the recursion gets a copy.
			if len(next) == 1 && next[0].stack < 0 && len(w.g.calls[next[0].node]) == 0 {
				w.walk1(child, next[0].node)
			} else {
				w.walkN(child, depth+1, slices.Clone(next))
			}
		}
	}
}

// depEntry returns the resolution of node's dependent tokens above frame ret.
func (bg *boundGrammar) depEntry(node, ret int32) *depEntry {
	k := depKey{node, ret}
	if e, ok := bg.dep.Load(k); ok {
		return e.(*depEntry)
	}
	e := &depEntry{}
	var fs frames
	base := fs.push(ret, -1, bg.dist)
	d0 := addDist(bg.dist[node], bg.dist[ret])
	var cur, nxt []cfg
	deps := slices.Concat(bg.tables[bg.eqc[node]].dep, bg.longTable(node).dep)
	for _, tok := range deps {
		cur = append(cur[:0], cfg{node, base})
		deeper := false
		for _, b := range []byte(bg.v.pieces[tok]) {
			var ex bool
			nxt, ex = bg.advance(&fs, cur, b, nxt[:0])
			deeper = deeper || ex
			cur, nxt = nxt, cur
			if len(cur) == 0 {
				break
			}
		}
		switch {
		case deeper:
			e.deeper = append(e.deeper, tok)
		case len(cur) > 0:
			e.acc = append(e.acc, tokDelta{tok, deltaOf(bg.minDist(&fs, cur), d0)})
		}
	}
	got, _ := bg.dep.LoadOrStore(k, e)
	return got.(*depEntry)
}
