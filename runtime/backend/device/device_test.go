package device

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOpen(t *testing.T) {
	b, err := Open("cpu", Options{Threads: 1})
	require.NoError(t, err)
	require.Equal(t, "cpu", b.Name())
	_, err = Open("tpu", Options{})
	require.ErrorContains(t, err, `device "tpu": unknown`)
	if len(Names()) == 1 {
		_, err = Open("cuda", Options{})
		require.ErrorContains(t, err, "built without CUDA")
	}
}
