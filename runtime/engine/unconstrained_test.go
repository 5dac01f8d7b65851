package engine

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/runtime/sampling"
)

// unconstrainedGolden holds the tokens the engine gave for a fixed mixed workload
// before constrained decoding existed (written by this test at commit 1ac0017 with
// VIREO_WRITE_UNCONSTRAINED=1): unconstrained requests must keep giving exactly these.
const unconstrainedGolden = "testdata/unconstrained.json"

func unconstrainedWorkload(t *testing.T) []*Request {
	m := openStories(t)
	reqs := workload(t, m, 24)
	seed := uint64(17)
	for i, r := range reqs {
		switch i % 6 {
		case 0:
			r.Sampling = sampling.Params{Temperature: 0.9, TopP: 0.8, TopK: 30, RepetitionPenalty: 1.2, PresencePenalty: 0.3, FrequencyPenalty: 0.1}
			r.Seed = &seed
		case 1:
			r.Stop = []string{" the", "."}
		case 2:
			r.MinTokens = 5
			r.Sampling = sampling.Params{Temperature: 1, MinP: 0.05}
			r.Seed = &seed
		case 3:
			r.N = 2
			r.Sampling = sampling.Params{Temperature: 0.7}
			r.Seed = &seed
		}
		if r.Sampling.TopP == 0 {
			r.Sampling.TopP = 1
		}
		if r.Sampling.RepetitionPenalty == 0 {
			r.Sampling.RepetitionPenalty = 1
		}
	}
	return reqs
}

func TestUnconstrainedTokensUnchanged(t *testing.T) {
	m := openStories(t)
	reqs := unconstrainedWorkload(t)
	got := runAll(t, newEngine(t, m, Options{DecodeSteps: 4}), reqs)
	type rec struct {
		IDs    [][]int32
		Finish []FinishReason
	}
	var out []rec
	for _, rs := range got {
		var r rec
		for _, x := range rs {
			r.IDs = append(r.IDs, x.ids)
			r.Finish = append(r.Finish, x.finish)
		}
		out = append(out, r)
	}
	if os.Getenv("VIREO_WRITE_UNCONSTRAINED") == "1" {
		b, err := json.MarshalIndent(out, "", " ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(unconstrainedGolden, b, 0o644))
		return
	}
	b, err := os.ReadFile(unconstrainedGolden)
	require.NoError(t, err)
	var want []rec
	require.NoError(t, json.Unmarshal(b, &want))
	require.Equal(t, want, out)
}
