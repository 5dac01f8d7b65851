package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/runtime/grammar"
	"github.com/vireo-ai/vireo/runtime/sampling"
)

func mustSchema(t testing.TB, s string) *grammar.Grammar {
	g, err := grammar.JSONSchema([]byte(s), grammar.Options{})
	require.NoError(t, err, s)
	return g
}

// TestConstrainedOutputs: on stories260K (whose own output is nothing like JSON) the
// constraint alone makes every output valid and complete: each parses, has the
// schema's shape, and ends by end-of-sequence within max_tokens — greedy and sampled,
// with top-k/top-p/min-p and penalties acting within the allowed set, n > 1, several
// requests batched with unconstrained ones.
func TestConstrainedOutputs(t *testing.T) {
	m := openStories(t)
	schema := `{"type":"object","properties":{"name":{"type":"string","maxLength":20},"age":{"type":"integer","minimum":0,"maximum":150},"pets":{"type":"array","items":{"enum":["cat","dog"]},"maxItems":3}},"required":["name","age","pets"],"additionalProperties":false}`
	g := mustSchema(t, schema)
	re, err := grammar.Regex(`(yes|no)(, because [a-z ]{1,20})?\.`, grammar.Options{})
	require.NoError(t, err)
	choice, err := grammar.Choice([]string{"red", "green", "blue"}, grammar.Options{})
	require.NoError(t, err)
	prompt := workload(t, m, 1)[0].Prompt
	seed := uint64(3)
	params := []sampling.Params{
		{TopP: 1, RepetitionPenalty: 1},
		{Temperature: 1, TopP: 1, RepetitionPenalty: 1},
		{Temperature: 1.3, TopK: 5, TopP: 0.9, RepetitionPenalty: 1.3, PresencePenalty: 0.5, FrequencyPenalty: 0.5},
		{Temperature: 0.8, MinP: 0.1, TopP: 1, RepetitionPenalty: 1},
	}
	var reqs []*Request
	for i, p := range params {
		for j, c := range []*grammar.Grammar{g, re, choice} {
			reqs = append(reqs, &Request{Prompt: prompt, MaxTokens: []int{128, 64, 16}[j], Sampling: p, Seed: &seed, Constraint: c, N: 1 + i%2})
		}
		reqs = append(reqs, &Request{Prompt: prompt, MaxTokens: 20, Sampling: p, Seed: &seed})
	}
	e := newEngine(t, m, Options{DecodeSteps: 4, PrefillStreams: 2})
	got := runAll(t, e, reqs)
	pattern := regexp.MustCompile(`^(yes|no)(, because [a-z ]{1,20})?\.$`)
	for i, rs := range got {
		r := reqs[i]
		for _, x := range rs {
			switch r.Constraint {
			case nil:
				continue
			case g:
				var v struct {
					Name *string
					Age  *int
					Pets *[]string
				}
				require.NoError(t, json.Unmarshal([]byte(x.text), &v), x.text)
				require.NotNil(t, v.Name, x.text)
				require.NotNil(t, v.Age, x.text)
				require.NotNil(t, v.Pets, x.text)
				require.LessOrEqual(t, len([]rune(*v.Name)), 20)
				require.True(t, *v.Age >= 0 && *v.Age <= 150)
				for _, p := range *v.Pets {
					require.Contains(t, []string{"cat", "dog"}, p)
				}
			case re:
				require.Regexp(t, pattern, x.text)
			case choice:
				require.Contains(t, []string{"red", "green", "blue"}, x.text)
			}
			require.Equal(t, FinishStop, x.finish, "request %d: %q", i, x.text)
			require.LessOrEqual(t, x.usage.CompletionTokens, r.MaxTokens)
			require.True(t, slices.Contains(m.Tokenizer.EOSIDs(), x.ids[len(x.ids)-1]), "ends with EOS")
			t.Logf("%d: %q", i, x.text)
		}
	}
}

// The tight budget still finishes: max_tokens barely above the shortest output.
func TestConstraintTightBudget(t *testing.T) {
	m := openStories(t)
	g := mustSchema(t, `{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"array","items":{"type":"integer"},"minItems":2}},"required":["a","b"]}`)
	v, err := newEngine(t, m, Options{}).Vocab()
	require.NoError(t, err)
	need := g.NewMatcher(v).MinRemaining()
	e := newEngine(t, m, Options{})
	prompt := workload(t, m, 1)[0].Prompt
	for extra := 0; extra < 6; extra++ {
		seed := uint64(extra)
		got := runAll(t, e, []*Request{{Prompt: prompt, MaxTokens: need + extra, Seed: &seed, Constraint: g,
			Sampling: sampling.Params{Temperature: 1, TopP: 1, RepetitionPenalty: 1}}})
		x := got[0][0]
		require.Equal(t, FinishStop, x.finish, "max_tokens %d: %q", need+extra, x.text)
		require.True(t, json.Valid([]byte(x.text)), x.text)
	}
}

func TestConstraintRequestChecks(t *testing.T) {
	m := openStories(t)
	e := newEngine(t, m, Options{})
	prompt := workload(t, m, 1)[0].Prompt
	_, err := e.Submit(context.Background(), &Request{Prompt: prompt, MaxTokens: 8, IgnoreEOS: true, Constraint: mustSchema(t, `{"type":"integer"}`)})
	require.ErrorIs(t, err, ErrInvalid)
	require.ErrorContains(t, err, "ignore_eos")
	// min_tokens beyond the constrained output: the output still ends where it is
	// complete (nothing else could follow).
	got := runAll(t, e, []*Request{{Prompt: prompt, MaxTokens: 30, MinTokens: 20, Constraint: mustSchema(t, `{"enum":[1,2]}`),
		Sampling: sampling.Params{TopP: 1, RepetitionPenalty: 1}}})
	require.Contains(t, []string{"1", "2"}, got[0][0].text)
	require.Equal(t, FinishStop, got[0][0].finish)
}

// TestConstraintUsesGreedyWithinMask: greedy decoding under a constraint picks the
// most likely allowed token at every step (checked against the unconstrained
// logits, recomputed by teacher forcing through the engine).
func TestConstraintGreedyIsArgmaxOfAllowed(t *testing.T) {
	m := openStories(t)
	e := newEngine(t, m, Options{})
	g, err := grammar.Regex(`[a-z ]{1,40}\.`, grammar.Options{})
	require.NoError(t, err)
	prompt := workload(t, m, 1)[0].Prompt
	got := runAll(t, e, []*Request{{Prompt: prompt, MaxTokens: 48, Constraint: g, Logprobs: true, TopLogprobs: 20,
		Sampling: sampling.Params{TopP: 1, RepetitionPenalty: 1}}})
	x := got[0][0]
	require.Regexp(t, `^[a-z ]{1,40}\.$`, x.text)
	// The tokens the model preferred (top logprobs of the raw distribution) that the
	// constraint allowed must never beat the token chosen.
	v, err := e.Vocab()
	require.NoError(t, err)
	mt := g.NewMatcher(v)
	for i, tok := range x.ids {
		for _, alt := range topAt(t, e, prompt, x.ids[:i]) {
			if alt.Token == tok {
				break
			}
			require.False(t, mt.Allowed(alt.Token, 48-i), "step %d: allowed %d (%q) ranks above the chosen %d", i, alt.Token, v.Piece(alt.Token), tok)
		}
		require.NoError(t, mt.Accept(tok))
	}
}

// topAt returns the raw top logprobs after prompt+prefix (one greedy step with logprobs).
func topAt(t *testing.T, e *Engine, prompt, prefix []int32) []sampling.TokenLogprob {
	ctx := context.Background()
	p := append(append([]int32(nil), prompt...), prefix...)
	events, err := e.Submit(ctx, &Request{Prompt: p, MaxTokens: 1, Logprobs: true, TopLogprobs: 20, IgnoreEOS: true,
		Sampling: sampling.Params{TopP: 1, RepetitionPenalty: 1}})
	require.NoError(t, err)
	var top []sampling.TokenLogprob
	for ev := range events {
		if ev.HasToken {
			top = ev.TopLogprobs
		}
	}
	require.NotEmpty(t, top, fmt.Sprint(len(p)))
	return top
}
