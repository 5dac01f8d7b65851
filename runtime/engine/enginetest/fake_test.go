package enginetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/model"
)

func TestFakeForward(t *testing.T) {
	m, _, err := NewFake("synthetic:tinyllama-1.1b", cpu.New(cpu.Options{}), time.Millisecond)
	require.NoError(t, err)
	ws, err := m.NewWorkspace(8, 4)
	require.NoError(t, err)
	kv, err := m.NewKVCache(4, 16)
	require.NoError(t, err)
	start := time.Now()
	logits, err := m.Forward(ws, kv, []model.Seq{{Tokens: []int32{1, 5, 6}, Blocks: []int32{0}, Logits: model.LogitsLast}, {Tokens: []int32{9}, Pos: 4, Blocks: []int32{1}, Logits: model.LogitsLast}})
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(start), time.Millisecond)
	V := m.Spec().VocabSize
	require.Len(t, logits, 2*V)
	require.Equal(t, float32(10), logits[3*7+3], "sequence 0 continues at position 3")
	require.Equal(t, float32(10), logits[V+5*7+3], "sequence 1 continues at position 5")
}
