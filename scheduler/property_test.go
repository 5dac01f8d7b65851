package scheduler

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// waitBound is the documented bound B = ceil(S·M / (T−S+1)).
func waitBound(c Config) int {
	num := c.MaxNumSeqs * c.MaxModelLen
	den := c.MaxNumBatchedTokens - c.MaxNumSeqs + 1
	return (num + den - 1) / den
}

type simCase struct {
	seed        int64
	k, lanes    int
	spec        int // SpecTokens: the fake engine drafts, and accepts a random prefix
	prefix      bool
	adapters    bool // requests of 3 adapters and the base, MaxAdapters 1 or 2, salted prefixes
	steps       int
	cancelProb  float64
	arrivalProb float64
}

// simulate runs a random workload against the scheduler with a fake engine
// that "writes" token ids into a simulated KV memory, and checks the
// invariants after every Schedule and Commit. It returns a digest of all plans
// (for the determinism test).
func simulate(t *testing.T, sc simCase) uint64 {
	rng := rand.New(rand.NewSource(sc.seed))
	bs := []int{2, 4, 8}[rng.Intn(3)]
	cfg := Config{
		BlockSize:         bs,
		NumBlocks:         6 + rng.Intn(40),
		MaxNumSeqs:        1 + rng.Intn(8),
		WatermarkBlocks:   rng.Intn(3),
		EnablePrefixCache: sc.prefix,
		DecodeSteps:       sc.k,
		PrefillLanes:      sc.lanes,
		SpecTokens:        sc.spec,
	}
	cfg.MaxNumBatchedTokens = cfg.MaxNumSeqs + rng.Intn(64)
	cfg.PrefillChunk = 1 + rng.Intn(cfg.MaxNumBatchedTokens)
	if rng.Intn(2) == 0 {
		cfg.MaxLongPrefills = 1 + rng.Intn(2)
		cfg.LongPromptThreshold = 4 + rng.Intn(24)
	}
	if rng.Intn(3) == 0 {
		cfg.MaxModelLen = 8 + rng.Intn(64)
	}
	if sc.adapters {
		cfg.MaxAdapters = 1 + rng.Intn(2)
	}
	s, err := New(cfg)
	require.NoError(t, err)
	cfg = s.Config()
	B := waitBound(cfg)
	desc := fmt.Sprintf("seed %d cfg %+v", sc.seed, cfg)

	// Simulated KV memory: token id written at each slot, -1 = never written.
	kvMem := make([]int32, cfg.NumBlocks*bs)
	for i := range kvMem {
		kvMem[i] = -1
	}
	slot := func(table []int32, pos int) int { return int(table[pos/bs])*bs + pos%bs }
	// What a slot holds depends on the adapter too: KV computed under one adapter read
	// by a request of another is caught like a wrong token.
	enc := func(r *Request, tok int32) int32 { return tok + int32(r.Adapter())*100000 }

	prefixes := [][]int32{seqTokens(1, 40), seqTokens(100, 40), seqTokens(1, 20)}
	var all []*Request
	t0 := time.Unix(0, 0)
	now := t0
	digest := fnv.New64a()
	nextID := 0
	arrivals := true
	var res []Result
	maxRoom := 0

	for stepN := 0; ; stepN++ {
		if stepN == sc.steps {
			arrivals = false
		}
		if !arrivals && s.NumWaiting()+s.NumRunning() == 0 {
			break
		}
		require.Less(t, stepN, sc.steps+20000, "%s: requests never drain (livelock)\n%s", desc, s.dump())
		now = now.Add(time.Second)

		for arrivals && s.NumWaiting() < 32 && rng.Float64() < sc.arrivalProb {
			var prompt []int32
			n := 1 + rng.Intn(48)
			if sc.prefix && rng.Intn(2) == 0 {
				pre := prefixes[rng.Intn(len(prefixes))]
				prompt = append(prompt, pre[:min(n, len(pre))]...)
			}
			for len(prompt) < n {
				prompt = append(prompt, int32(1000+rng.Intn(50)))
			}
			nr := NewRequest{ID: fmt.Sprint("r", nextID), Prompt: prompt, MaxNewTokens: 1 + rng.Intn(24)}
			nextID++
			if sc.adapters {
				nr.Adapter = uint64(rng.Intn(4))
				nr.CacheSalt = nr.Adapter * 0x9e3779b97f4a7c15
			}
			if rng.Intn(10) == 0 {
				nr.Deadline = now.Add(time.Duration(1+rng.Intn(40)) * time.Second)
			}
			r, err := s.Add(nr)
			if err != nil {
				require.True(t, errors.Is(err, ErrRejected), "%s: %v", desc, err)
				require.Equal(t, Rejected, r.Finish())
				continue
			}
			all = append(all, r)
		}
		if rng.Float64() < sc.cancelProb && len(all) > 0 {
			s.Cancel(all[rng.Intn(len(all))].ID())
		}

		p, err := s.Step(now)
		require.NoError(t, err)
		require.NoError(t, s.Check(), "%s step %d", desc, stepN)

		// Plan shape.
		decodeTok := len(p.Decode) + p.NumLookahead
		lookahead := 0
		prefillTok := 0
		inPlan := map[*Request]bool{}
		for _, d := range p.Decode {
			require.False(t, inPlan[d.Req], "%s: request twice in plan", desc)
			inPlan[d.Req] = true
			require.GreaterOrEqual(t, d.NumSteps, 1)
			require.LessOrEqual(t, d.NumSteps, cfg.DecodeSteps)
			require.GreaterOrEqual(t, len(d.BlockTable)*bs, d.Pos+d.NumSteps, "%s: decode reservation", desc)
			if d.Lookahead > 0 {
				require.Equal(t, 1, d.NumSteps, "%s: a verification pass is one step", desc)
				require.LessOrEqual(t, d.Lookahead, cfg.SpecTokens, desc)
				require.LessOrEqual(t, d.Lookahead, d.Req.want, "%s: more drafted positions than asked for", desc)
				require.Less(t, len(d.Req.Output())+d.Lookahead, d.Req.MaxNewTokens(), "%s: drafts past the length cap", desc)
				require.GreaterOrEqual(t, len(d.BlockTable)*bs, d.Pos+1+d.Lookahead, "%s: lookahead reservation", desc)
			}
			lookahead += d.Lookahead
			fmt.Fprint(digest, "d", d.Req.ID(), d.Pos, d.NumSteps, d.Lookahead, d.BlockTable)
		}
		require.LessOrEqual(t, len(p.Prefill), cfg.PrefillLanes)
		laneSeen := map[int]bool{}
		for _, g := range p.Prefill {
			require.False(t, laneSeen[g.Lane])
			require.True(t, g.Lane >= 0 && g.Lane < cfg.PrefillLanes)
			require.NotEmpty(t, g.Items)
			laneSeen[g.Lane] = true
			for _, it := range g.Items {
				require.False(t, inPlan[it.Req], "%s: request twice in plan", desc)
				inPlan[it.Req] = true
				require.Less(t, it.Start, it.End)
				require.LessOrEqual(t, it.End-it.Start, cfg.PrefillChunk)
				require.LessOrEqual(t, it.End, len(it.Req.Tokens()))
				require.GreaterOrEqual(t, len(it.BlockTable)*bs, it.End)
				prefillTok += it.End - it.Start
				fmt.Fprint(digest, "p", g.Lane, it.Req.ID(), it.Start, it.End, it.BlockTable)
			}
		}
		require.Equal(t, lookahead, p.NumLookahead)
		require.LessOrEqual(t, lookahead, cfg.MaxSpecTokens)
		require.Equal(t, decodeTok+prefillTok, p.NumTokens)
		require.LessOrEqual(t, p.NumTokens, cfg.MaxNumBatchedTokens, "%s: budget", desc)
		require.LessOrEqual(t, p.NumSeqs(), cfg.MaxNumSeqs, "%s: seq cap", desc)
		if cfg.MaxAdapters > 0 {
			distinct := map[uint64]bool{}
			for r := range inPlan {
				if r.Adapter() != 0 {
					distinct[r.Adapter()] = true
				}
			}
			require.LessOrEqual(t, len(distinct), cfg.MaxAdapters, "%s: adapters in one plan", desc)
			require.LessOrEqual(t, len(s.RunningAdapters(nil)), cfg.MaxAdapters, desc)
		}
		for _, r := range s.waiting {
			maxRoom = max(maxRoom, r.roomWaits)
			require.LessOrEqual(t, r.roomWaits, B, "%s: %s waited too long with room", desc, r.ID())
		}

		// The engine: verify the KV history each item reads, then write.
		res = res[:0]
		want := func() int {
			if sc.spec == 0 || rng.Intn(4) == 0 {
				return 0
			}
			return rng.Intn(sc.spec + 1)
		}
		var verified []*Request
		for _, d := range p.Decode {
			toks := d.Req.Tokens()
			for pos := 0; pos < d.Pos; pos++ {
				require.Equal(t, enc(d.Req, toks[pos]), kvMem[slot(d.BlockTable, pos)], "%s: %s reads wrong KV at %d", desc, d.Req.ID(), pos)
			}
			if d.Lookahead > 0 {
				// Verification: write the fed token and the drafts (ids 3000+, never
				// those of sampled tokens, so a rejected draft's KV read as history
				// is caught), accept a random prefix, then sample one token.
				drafts := make([]int32, d.Lookahead)
				for j := range drafts {
					drafts[j] = int32(3000 + rng.Intn(20))
				}
				for j := 0; j <= d.Lookahead; j++ {
					in := toks[d.Pos]
					if j > 0 {
						in = drafts[j-1]
					}
					b := d.BlockTable[(d.Pos+j)/bs]
					require.Equal(t, 1, s.Pool().RefCount(b), "%s: verification writes a shared block", desc)
					kvMem[slot(d.BlockTable, d.Pos+j)] = enc(d.Req, in)
				}
				a := rng.Intn(d.Lookahead + 1)
				out := append(append([]int32(nil), drafts[:a]...), int32(2000+rng.Intn(20)))
				fin := NotFinished
				if rng.Intn(30) == 0 {
					out = out[:1+rng.Intn(len(out))]
					fin = FinishedStop
				}
				res = append(res, Result{Req: d.Req, Tokens: out, Finish: fin, Lookahead: want()})
				verified = append(verified, d.Req)
				continue
			}
			n := 1 + rng.Intn(d.NumSteps)
			out := make([]int32, n)
			fin := NotFinished
			for j := range out {
				out[j] = int32(2000 + rng.Intn(20))
				if rng.Intn(30) == 0 {
					out = out[:j+1]
					fin = FinishedStop
					break
				}
			}
			for j := range out {
				in := toks[d.Pos]
				if j > 0 {
					in = out[j-1]
				}
				b := d.BlockTable[(d.Pos+j)/bs]
				require.Equal(t, 1, s.Pool().RefCount(b), "%s: decode writes a shared block", desc)
				kvMem[slot(d.BlockTable, d.Pos+j)] = enc(d.Req, in)
			}
			if rng.Intn(200) == 0 {
				fin = Aborted
			}
			res = append(res, Result{Req: d.Req, Tokens: out, Finish: fin, Lookahead: want()})
		}
		for _, g := range p.Prefill {
			for _, it := range g.Items {
				toks := it.Req.Tokens()
				for pos := 0; pos < it.Start; pos++ {
					require.Equal(t, enc(it.Req, toks[pos]), kvMem[slot(it.BlockTable, pos)], "%s: %s reads wrong prefix KV at %d", desc, it.Req.ID(), pos)
				}
				for pos := it.Start; pos < it.End; pos++ {
					require.Equal(t, 1, s.Pool().RefCount(it.BlockTable[pos/bs]), "%s: prefill writes a shared block", desc)
					kvMem[slot(it.BlockTable, pos)] = enc(it.Req, toks[pos])
				}
				if it.Complete() {
					fin := NotFinished
					if rng.Intn(20) == 0 {
						fin = FinishedStop
					}
					res = append(res, Result{Req: it.Req, Tokens: []int32{int32(2000 + rng.Intn(20))}, Finish: fin, Lookahead: want()})
				}
			}
		}
		if rng.Float64() < sc.cancelProb && len(all) > 0 { // cancel mid-plan
			s.Cancel(all[rng.Intn(len(all))].ID())
			require.NoError(t, s.Check(), "%s step %d after mid-plan cancel", desc, stepN)
		}
		require.NoError(t, s.Commit(p, res), desc)
		require.NoError(t, s.Check(), "%s step %d after commit", desc, stepN)
		for _, r := range verified {
			if !r.Finished() {
				require.LessOrEqual(t, len(r.blocks), s.blocksFor(len(r.tokens)), "%s: %s keeps blocks reserved for rejected drafts", desc, r.ID())
			}
		}
	}

	for _, r := range all {
		require.True(t, r.Finished(), "%s: %s never ended", desc, r.ID())
		require.NotEqual(t, NotFinished, r.Finish())
		if r.Finish() == FinishedLength {
			require.Len(t, r.Output(), r.MaxNewTokens())
		}
		require.LessOrEqual(t, len(r.Output()), r.MaxNewTokens())
	}
	st := s.Stats()
	t.Logf("steps %d admitted %d preemptions %d prefill %d hit %d decode %d drafted %d; max room-waits %d (bound %d)",
		st.Steps, st.Admitted, st.Preemptions, st.PrefillTokens, st.PrefixHitTokens, st.DecodeTokens, st.LookaheadTokens, maxRoom, B)
	if sc.spec > 0 {
		require.Greater(t, st.LookaheadTokens, uint64(0), "%s: no drafted position was ever scheduled", desc)
	}
	pool := s.Pool()
	require.Equal(t, cfg.NumBlocks, pool.NumFree()+pool.NumCached(), "%s: leaked blocks", desc)
	require.Zero(t, pool.NumPending())
	require.Zero(t, s.Usage())
	if !sc.prefix {
		require.Zero(t, pool.NumCached())
	}
	return digest.Sum64()
}

func TestPropertyRandomWorkloads(t *testing.T) {
	seeds := 12
	steps := 1500
	if testing.Short() {
		seeds, steps = 3, 500
	}
	for _, spec := range []int{0, 3} {
		for _, k := range []int{1, 8} {
			for _, lanes := range []int{1, 4} {
				for _, prefix := range []bool{false, true} {
					n := seeds
					if spec > 0 {
						n = (seeds + 2) / 3 // the same invariants, with drafts: a third of the seeds
					}
					for seed := int64(1); seed <= int64(n); seed++ {
						sc := simCase{seed: seed*1000 + int64(k*10+lanes) + int64(spec*100), k: k, lanes: lanes, prefix: prefix, spec: spec,
							steps: steps, cancelProb: 0.03, arrivalProb: 0.1 + 0.15*float64(seed%4)}
						name := fmt.Sprintf("k%d_lanes%d_prefix%v_seed%d", k, lanes, prefix, seed)
						if spec > 0 {
							name = fmt.Sprintf("spec%d_%s", spec, name)
						}
						t.Run(name, func(t *testing.T) {
							simulate(t, sc)
						})
					}
				}
			}
		}
	}
}

// Requests of three adapters and the base under MaxAdapters 1 or 2, with and without
// the prefix cache: the cap holds in every plan, no request reads KV computed under
// another adapter, the waiting bound holds, and everything drains.
func TestPropertyAdapters(t *testing.T) {
	seeds, steps := 8, 1500
	if testing.Short() {
		seeds, steps = 3, 500
	}
	for _, prefix := range []bool{false, true} {
		for _, k := range []int{1, 8} {
			for seed := int64(1); seed <= int64(seeds); seed++ {
				sc := simCase{seed: seed*7919 + int64(k), k: k, lanes: 1 + int(seed%2)*3, prefix: prefix, adapters: true,
					steps: steps, cancelProb: 0.03, arrivalProb: 0.1 + 0.15*float64(seed%4)}
				t.Run(fmt.Sprintf("k%d_prefix%v_seed%d", k, prefix, seed), func(t *testing.T) { simulate(t, sc) })
			}
		}
	}
}

func TestPropertyDeterministic(t *testing.T) {
	sc := simCase{seed: 42, k: 8, lanes: 4, prefix: true, steps: 800, cancelProb: 0.05, arrivalProb: 0.5}
	require.Equal(t, simulate(t, sc), simulate(t, sc))
	sc.spec = 3
	require.Equal(t, simulate(t, sc), simulate(t, sc))
}
