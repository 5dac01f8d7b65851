package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/loader"
)

// TestRoleNumerics: a row's numerics follow its role (Seq.Prompt), not its batch. With
// int8 weights on a CPU backend that honours the role as a device does
// (cpu.Options.W8A8: prompt rows' activations quantized per token, generated rows'
// kept), a decode row's logits are bit for bit the same alone and in a pass with a
// 200-row prompt chunk (before or after it), and so are the prompt's. The role does
// matter — the same decode token run as a prompt row gives other logits — so a pass
// that gave the decode row the prompt's precision (a choice by row count, or one call
// for the mixed rows) would fail here. Without the option the CPU ignores the role.
func TestRoleNumerics(t *testing.T) {
	ck, err := loader.Open(shared.Path(t, "models", "stories260K", "stories260K.bin"), loader.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { ck.Close() })
	m, err := Load(ck, cpu.New(cpu.Options{W8A8: true}), Options{Weights: WeightsInt8})
	require.NoError(t, err)
	plain, err := Load(ck, cpu.New(cpu.Options{}), Options{Weights: WeightsInt8})
	require.NoError(t, err)
	V := m.Config.VocabSize
	const bs, hist, long = 16, 37, 200
	rng := rand.New(rand.NewPCG(22, 1))
	tokens := func(n int) []int32 {
		t := make([]int32, n)
		for i := range t {
			t[i] = int32(1 + rng.IntN(V-1))
		}
		return t
	}
	histA, nextA, promptB := tokens(hist), tokens(1), tokens(long)
	blocksA, blocksB := []int32{0, 1, 2}, make([]int32, (long+bs-1)/bs)
	for i := range blocksB {
		blocksB[i] = int32(3 + i)
	}
	decodeA := Seq{Tokens: nextA, Pos: hist, Blocks: blocksA, Logits: LogitsLast}
	chunkB := Seq{Tokens: promptB, Blocks: blocksB, Logits: LogitsLast, Prompt: true}

	// run prefills A's history as a prompt on a fresh cache, then runs step and returns
	// its logits (a copy).
	run := func(m *Model, step ...Seq) []float32 {
		t.Helper()
		kv, err := m.NewKVCache(32, bs)
		require.NoError(t, err)
		ws, err := m.NewWorkspace(256, 4)
		require.NoError(t, err)
		_, err = m.Forward(ws, kv, []Seq{{Tokens: histA, Blocks: blocksA, Logits: LogitsNone, Prompt: true}})
		require.NoError(t, err)
		out, err := m.Forward(ws, kv, step)
		require.NoError(t, err)
		return append([]float32(nil), out...)
	}
	same := func(what string, want, got []float32) {
		t.Helper()
		require.Len(t, got, len(want), what)
		for j := range want {
			require.Equal(t, math.Float32bits(want[j]), math.Float32bits(got[j]), "%s: logit %d", what, j)
		}
	}
	alone := run(m, decodeA)
	aloneB := run(m, chunkB)
	after := run(m, chunkB, decodeA) // the prompt's rows first in the pass's order
	before := run(m, decodeA, chunkB)
	same("decode row after a 200-row prompt", alone, after[V:])
	same("decode row before a 200-row prompt", alone, before[:V])
	same("prompt with a decode row after it", aloneB, after[:V])
	same("prompt with a decode row before it", aloneB, before[V:])

	// The role matters: the same token as a prompt row is quantized, so its logits move.
	asPrompt := decodeA
	asPrompt.Prompt = true
	differ := func(a, b []float32) int {
		n := 0
		for j := range a {
			if a[j] != b[j] {
				n++
			}
		}
		return n
	}
	require.Greater(t, differ(alone, run(m, asPrompt)), V/2, "a decode row run as a prompt row must get W8A8's numerics")
	// A CPU backend without W8A8 ignores the role.
	same("role ignored without cpu.Options.W8A8", run(plain, decodeA), run(plain, asPrompt))
}
