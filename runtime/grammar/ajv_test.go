package grammar

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/runtime/grammar/grammartest"
)

// differentialSeed fixes the randomized schemas (and the walks over them).
const differentialSeed = 20261204

// DifferentialCorpus is the hand-written corpus plus 120 randomized schemas.
func differentialCorpus() []string {
	return append(grammartest.Corpus(), grammartest.Random(differentialSeed, 120)...)
}

// TestAjvDifferentialWalks: every schema of the corpus compiles (none refused), and
// outputs drawn uniformly at random among the allowed tokens — with stories260K's 512
// tokens and Llama 3's 128,256 — all end by end-of-sequence within 256 tokens, parse,
// and validate with ajv (the npm reference). Uniform draws wander where no model
// would, so they exercise the whole automaton, escapes, unicode and bounds included.
func TestAjvDifferentialWalks(t *testing.T) {
	schemas := differentialCorpus()
	require.GreaterOrEqual(t, len(schemas), 200)
	_, stories := storiesVocab(t)
	vocabs := []struct {
		name  string
		v     *Vocab
		every int // walk every n-th schema
	}{{"stories260K", stories, 1}}
	if ok, _ := grammartest.HaveAjv(); ok {
		_, llama := llama3Vocab(t)
		every := 1
		if raceEnabled {
			every = 24 // the 128k tables take a while under the race detector
		}
		vocabs = append(vocabs, struct {
			name  string
			v     *Vocab
			every int
		}{"llama3", llama, every})
	}
	rng := rand.New(rand.NewPCG(differentialSeed, 1))
	var checks []grammartest.Check
	var where []string
	for i, s := range schemas {
		g, err := JSONSchema([]byte(s), Options{})
		require.NoError(t, err, "schema %d refused: %s", i, s)
		for _, vc := range vocabs {
			if i%vc.every != 0 {
				continue
			}
			need := g.NewMatcher(vc.v).MinRemaining()
			require.Less(t, need, 200, "schema %d: its shortest output does not fit the budget: %s", i, s)
			for k := 0; k < 3; k++ {
				text, n, ended := randomWalk(t, g, vc.v, rng, 256, []float64{0.05, 0.5, 1}[k])
				require.True(t, ended, "%s schema %d walk %d: no end-of-sequence within 256 tokens (%d): %s\n%q", vc.name, i, k, n, s, text)
				require.True(t, json.Valid([]byte(text)), "%s schema %d: invalid JSON %q", vc.name, i, text)
				checks = append(checks, grammartest.Check{Schema: s, Text: text})
				where = append(where, fmt.Sprintf("%s schema %d walk %d", vc.name, i, k))
			}
		}
	}
	verdicts := grammartest.Ajv(t, checks)
	for i, v := range verdicts {
		require.Empty(t, v.SchemaError, "%s: ajv cannot compile %s", where[i], checks[i].Schema)
		require.True(t, v.Parses && v.Valid, "%s: ajv: %s\nschema %s\noutput %q", where[i], v.Errors, checks[i].Schema, checks[i].Text)
	}
	t.Logf("%d schemas (%d random), %d outputs validated by ajv", len(schemas), 120, len(checks))
}
