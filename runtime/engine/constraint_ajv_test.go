package engine

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/runtime/grammar"
	"github.com/vireo-ai/vireo/runtime/grammar/grammartest"
	"github.com/vireo-ai/vireo/runtime/sampling"
)

// TestStructuredOutputsAjv is the acceptance check of constrained decoding on a model:
// stories260K, whose own output is nothing like JSON, decodes every schema of the
// differential corpus (hand-written plus 120 randomized, >= 200 in all) with a fixed
// max_tokens of 256, greedy and sampled. No schema is refused; every output parses,
// validates with ajv (the npm reference) and ends by end-of-sequence — an output that
// ends by length counts as a failure.
func TestStructuredOutputsAjv(t *testing.T) {
	schemas := append(grammartest.Corpus(), grammartest.Random(20261204, 120)...)
	require.GreaterOrEqual(t, len(schemas), 200)
	m := openStories(t)
	e := newEngine(t, m, Options{DecodeSteps: 4, PrefillStreams: 2})
	prompt := workload(t, m, 1)[0].Prompt
	seed := uint64(11)
	var reqs []*Request
	for i, s := range schemas {
		g, err := grammar.JSONSchema([]byte(s), grammar.Options{})
		require.NoError(t, err, "schema %d refused: %s", i, s)
		reqs = append(reqs,
			&Request{Prompt: prompt, MaxTokens: 256, Constraint: g, Sampling: sampling.Params{TopP: 1, RepetitionPenalty: 1}},
			&Request{Prompt: prompt, MaxTokens: 256, Constraint: g, Seed: &seed,
				Sampling: sampling.Params{Temperature: 0.8, TopP: 0.95, TopK: 40, RepetitionPenalty: 1.1}})
	}
	got := runAll(t, e, reqs)
	var checks []grammartest.Check
	for i, rs := range got {
		x := rs[0]
		s := schemas[i/2]
		require.Equal(t, FinishStop, x.finish, "schema %d (%s): finish %q after %d tokens: %q", i/2, grammartest.Describe(s), x.finish, len(x.ids), x.text)
		require.True(t, json.Valid([]byte(x.text)), "schema %d: %q", i/2, x.text)
		checks = append(checks, grammartest.Check{Schema: s, Text: x.text})
	}
	verdicts := grammartest.Ajv(t, checks)
	for i, v := range verdicts {
		require.Empty(t, v.SchemaError)
		require.True(t, v.Parses && v.Valid, "schema %d (request %d): ajv: %s\nschema %s\noutput %q", i/2, i, v.Errors, checks[i].Schema, checks[i].Text)
	}
	tokens := 0
	for _, rs := range got {
		tokens += len(rs[0].ids)
	}
	t.Logf("%d schemas, %d outputs (%d tokens) parse, validate with ajv and end by end-of-sequence", len(schemas), len(checks), tokens)
	for _, i := range []int{0, 120, 230, 300, 401} {
		t.Logf("%s\n  → %s", grammartest.Describe(schemas[i/2]), fmt.Sprintf("%q", got[i][0].text))
	}
}
