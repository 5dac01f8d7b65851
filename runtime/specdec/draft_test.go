package specdec

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/sampling"
)

func argmax(x []float32) int32 {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return int32(best)
}

// TestDrafterProposesGreedyContinuation: stories260K drafting for itself proposes
// exactly its own greedy continuation, whether the catch-up is one token, several
// (after accepted drafts the draft did not compute), or chunked across passes of a
// small workspace; and the draft writes only inside the positions it was given.
func TestDrafterProposesGreedyContinuation(t *testing.T) {
	be := cpu.New(cpu.Options{})
	m, err := llm.Open(shared.Path(t, "models", "stories260K", "stories260K.bin"), "", be, model.Options{})
	require.NoError(t, err)
	defer m.Close()
	prompt := []int32{1, 403, 407, 261, 378}
	// Reference: 24 greedy tokens.
	s, err := llm.NewSession(m.Model, 0, 64)
	require.NoError(t, err)
	lg, err := s.Feed(prompt)
	require.NoError(t, err)
	var want []int32
	for len(want) < 24 {
		next := argmax(lg)
		want = append(want, next)
		lg, err = s.Feed([]int32{next})
		require.NoError(t, err)
	}

	require.NoError(t, CheckDraft(m.Model, &m.Config, be, 256))
	d, err := NewDrafter(m.Model, 8, 16)
	require.NoError(t, err)
	str, err := be.NewStream()
	require.NoError(t, err)
	for _, wsTokens := range []int{64, 3} {
		ws, err := d.NewWorkspace(str, wsTokens, 4)
		require.NoError(t, err)
		blocks := []int32{5, 2, 7}
		// The prompt's first 3 tokens, prefilled as 2 chunks (the second split to fit
		// a workspace of 3); the first catch-up is then 3 tokens, or 2 passes.
		require.NoError(t, d.Prefill(ws, []model.Seq{{Tokens: prompt[:1], Pos: 0, Blocks: blocks}, {Tokens: prompt[1:3], Pos: 1, Blocks: blocks}}))
		seq := append(append([]int32(nil), prompt...), want[0])
		computed := 3
		greedy := sampling.Params{TopP: 1, RepetitionPenalty: 1}
		var smp sampling.Sampler
		for _, n := range []int{3, 1, 5, 4} {
			r := &Row{CatchUp: seq[computed:], Pos: computed, Blocks: blocks, N: n, Params: greedy, Index: uint64(len(seq) - len(prompt))}
			rows := []*Row{r}
			if n == 3 {
				// Another sequence's catch-up shares the passes (and, in a workspace of
				// 3 tokens, is chunked with this one's).
				rows = append(rows, &Row{CatchUp: []int32{1, 2, 3, 4, 5}, Pos: 0, Blocks: []int32{0}, N: 2, Params: greedy})
			}
			require.NoError(t, d.Propose(ws, &smp, rows))
			if n == 3 {
				require.Len(t, rows[1].Drafts, 2)
			}
			made := len(seq) - len(prompt)
			require.Equal(t, want[made:made+n], r.Drafts, "workspace %d, %d drafts after %d tokens", wsTokens, n, made)
			require.Nil(t, r.Q[0], "a greedy draft is deterministic")
			// All accepted plus a bonus: the draft computed all but its last draft.
			computed = len(seq) + n - 1
			seq = append(seq, r.Drafts...)
			seq = append(seq, want[len(seq)-len(prompt)])
		}
	}
	// A vocabulary mismatch is refused naming both sizes.
	other, err := llm.Open("synthetic:tiny", "", be, model.Options{})
	require.NoError(t, err)
	require.ErrorContains(t, CheckDraft(other.Model, &m.Config, be, 256), "its vocabulary has 259 tokens, the target's 512")
	require.ErrorContains(t, CheckDraft(m.Model, &m.Config, be, 1024), "context of 512 tokens is shorter than the max model length 1024")
}

// TestDrafterSamples: a sampling request's drafts come with the distribution each was
// drawn from, and the same seed gives the same drafts.
func TestDrafterSamples(t *testing.T) {
	be := cpu.New(cpu.Options{})
	m, err := llm.Open(shared.Path(t, "models", "stories260K", "stories260K.bin"), "", be, model.Options{})
	require.NoError(t, err)
	defer m.Close()
	d, err := NewDrafter(m.Model, 4, 16)
	require.NoError(t, err)
	str, _ := be.NewStream()
	ws, err := d.NewWorkspace(str, 16, 2)
	require.NoError(t, err)
	prompt := []int32{1, 403, 407, 261, 378}
	p := sampling.Params{Temperature: 1, TopK: 20, TopP: 1, RepetitionPenalty: 1.2, Seed: 9}
	var smp sampling.Sampler
	propose := func() *Row {
		r := &Row{CatchUp: prompt, Pos: 0, Blocks: []int32{0}, N: 4, Params: p, History: prompt}
		require.NoError(t, d.Propose(ws, &smp, []*Row{r}))
		return r
	}
	a, b := propose(), propose()
	require.Equal(t, a.Drafts, b.Drafts)
	require.Len(t, a.Drafts, 4)
	for j, q := range a.Q[:4] {
		require.Len(t, q, 512)
		require.Greater(t, q[a.Drafts[j]], float32(0), "draft %d drawn from its q", j)
		n := 0
		for _, v := range q {
			if v > 0 {
				n++
			}
		}
		require.LessOrEqual(t, n, 20, "top-k 20")
	}
}
