package backend

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/runtime/quant"
)

func TestInt8FromBlocks(t *testing.T) {
	f := []float32{1, -2, 0.5, 0, 0, 0, 3, -1.5}
	h := &HostWeight{Name: "w", Out: 2, In: 4, F32: f, Source: "Q4_K"}
	q, ok := Int8FromBlocks(h)
	require.True(t, ok)
	require.NoError(t, q.Validate())
	require.Nil(t, q.F32)
	wantQ, wantS := quant.QuantizeRows(f, 2, 4)
	require.Equal(t, wantQ, q.I8)
	require.Equal(t, wantS, q.Scales)
	require.Equal(t, "Q4_K", q.Source)

	plain := &HostWeight{Name: "w", Out: 2, In: 4, F32: f}
	got, ok := Int8FromBlocks(plain)
	require.False(t, ok, "float checkpoints keep their float path")
	require.Same(t, plain, got)
	i8 := &HostWeight{Name: "w", Out: 2, In: 4, I8: wantQ, Scales: wantS, Source: "Q8_0"}
	got, ok = Int8FromBlocks(i8)
	require.False(t, ok, "already int8")
	require.Same(t, i8, got)
}
