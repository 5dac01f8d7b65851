package grammar

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// byteVocab has one token per byte (ids 0..255) and end-of-sequence 256.
func byteVocab(t testing.TB) *Vocab {
	pieces := make([]string, 257)
	for i := 0; i < 256; i++ {
		pieces[i] = string([]byte{byte(i)})
	}
	v, err := NewVocab(pieces, []int32{256})
	require.NoError(t, err)
	return v
}

// accepts feeds s byte by byte and reports whether the grammar accepts it whole.
func accepts(g *Grammar, v *Vocab, s string) bool {
	m := g.NewMatcher(v)
	for i := 0; i < len(s); i++ {
		if m.Accept(int32(s[i])) != nil {
			return false
		}
	}
	return m.CanEnd()
}

// clone copies a matcher's state (tests).
func (m *Matcher) clone() *Matcher {
	c := &Matcher{bg: m.bg, done: m.done}
	c.cfgs = append([]cfg(nil), m.cfgs...)
	c.fs.f = append([]frame(nil), m.fs.f...)
	c.fs.idx = map[[2]int32]int32{}
	for k, v := range m.fs.idx {
		c.fs.idx[k] = v
	}
	return c
}

// brute decides token by token what FillMask should allow, by simulation.
func brute(m *Matcher, remaining int) []bool {
	v := m.bg.v
	out := make([]bool, v.n)
	try := func(budget bool) int {
		n := 0
		for tok := 0; tok < v.n; tok++ {
			out[tok] = false
			if v.isEOS(int32(tok)) {
				out[tok] = m.CanEnd()
			} else if v.pieces[tok] != "" {
				c := m.clone()
				if c.Accept(int32(tok)) == nil {
					d := c.bg.minDist(&c.fs, c.cfgs)
					out[tok] = !budget || int(d) <= remaining-2
				}
			}
			if out[tok] {
				n++
			}
		}
		return n
	}
	if remaining <= 0 || try(true) == 0 {
		try(false)
	}
	return out
}

func TestFillMaskMatchesSimulation(t *testing.T) {
	schemas := []string{
		`{"type":"object","properties":{"name":{"type":"string","maxLength":12},"age":{"type":"integer","minimum":-5,"maximum":120},"tags":{"type":"array","items":{"enum":["a","bc",null]},"maxItems":3}},"required":["name"]}`,
		`{"type":"object"}`,
		`{"$defs":{"n":{"type":"object","properties":{"v":{"type":"number","minimum":0.5,"maximum":10},"k":{"type":"array","items":{"$ref":"#/$defs/n"}}},"required":["v","k"],"additionalProperties":false}},"$ref":"#/$defs/n"}`,
		`{"anyOf":[{"type":"string","format":"uuid"},{"type":"array","items":{"type":"integer"},"minItems":3}]}`,
		`{"type":"array","items":{"type":"object","properties":{"x":{"type":"string","pattern":"^a+b?$"}},"required":["x"]},"minItems":1,"maxItems":5}`,
	}
	for _, vocab := range []string{"stories", "llama3"} {
		t.Run(vocab, func(t *testing.T) {
			var v *Vocab
			if vocab == "stories" {
				_, v = storiesVocab(t)
			} else {
				if testing.Short() || raceEnabled {
					t.Skip("the 128k brute force takes minutes under -short and -race (run without them to check it)")
				}
				_, v = llama3Vocab(t)
			}
			rng := rand.New(rand.NewPCG(3, 4))
			for _, s := range schemas {
				g, err := JSONSchema([]byte(s), Options{})
				require.NoError(t, err, s)
				steps := 40
				if vocab == "llama3" {
					steps = 8
				}
				m := g.NewMatcher(v)
				bits := make([]uint64, m.Words())
				var text []byte
				for step := 0; step < steps && !m.Done(); step++ {
					remaining := []int{0, 200, 30, 8, 3}[rng.IntN(5)]
					m.FillMask(bits, remaining)
					want := brute(m, remaining)
					var allowed []int32
					for tok := range want {
						got := bits[tok>>6]&(1<<(tok&63)) != 0
						if remaining == 0 {
							require.Equal(t, want[tok], got, "%s after %q: token %d %q", s, text, tok, v.pieces[tok])
						} else if got {
							// With a budget FillMask may be stricter than the simulation
							// (a token's distance is taken from its in-rule paths).
							require.True(t, want[tok], "%s after %q (remaining %d): token %d %q allowed", s, text, remaining, tok, v.pieces[tok])
						}
						if got {
							allowed = append(allowed, int32(tok))
						}
					}
					require.NotEmpty(t, allowed)
					tok := allowed[rng.IntN(len(allowed))]
					require.NoError(t, m.Accept(tok))
					if !v.isEOS(tok) {
						text = append(text, v.pieces[tok]...)
					}
				}
			}
		})
	}
}

func TestApplyMask(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1, 63, 64, 65, 200, 1000} {
		for _, density := range []float64{0, 0.01, 0.5, 0.99, 1} {
			bits := make([]uint64, (n+63)/64)
			want := make([]bool, n)
			for i := range want {
				want[i] = rng.Float64() < density
				if want[i] {
					bits[i>>6] |= 1 << (i & 63)
				}
			}
			logits := make([]float32, n)
			for i := range logits {
				logits[i] = rng.Float32()
			}
			orig := append([]float32(nil), logits...)
			ApplyMask(logits, bits)
			for i := range logits {
				if want[i] {
					require.Equal(t, orig[i], logits[i])
				} else {
					require.True(t, math.IsInf(float64(logits[i]), -1))
				}
			}
		}
	}
	// A bitmap shorter than the logits masks the rest (model vocab > tokenizer vocab).
	logits := []float32{1, 2, 3}
	ApplyMask(logits, nil)
	require.True(t, math.IsInf(float64(logits[2]), -1))
}

func TestBudgetEndsWithEOS(t *testing.T) {
	_, v := storiesVocab(t)
	rng := rand.New(rand.NewPCG(7, 8))
	for _, s := range []string{
		`{"type":"object"}`,
		`{"type":"array","items":{"type":"string"}}`,
		`{"type":"object","properties":{"a":{"type":"array","items":{"type":"object","properties":{"b":{"type":"string","minLength":5}},"required":["b"]},"minItems":2}},"required":["a"]}`,
		`{"type":"string","pattern":"^(ab)+c$"}`,
	} {
		g, err := JSONSchema([]byte(s), Options{})
		require.NoError(t, err)
		need := g.NewMatcher(v).MinRemaining()
		for _, max := range []int{need, need + 1, need + 7, 64} {
			for i := 0; i < 10; i++ {
				text, n, ended := randomWalk(t, g, v, rng, max, 0)
				require.True(t, ended, "%s max %d: %q", s, max, text)
				require.LessOrEqual(t, n, max)
				if s[9] != 's' || s[10] != 't' {
					require.True(t, json.Valid([]byte(text)), text)
				}
			}
		}
	}
}
