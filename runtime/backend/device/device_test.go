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
	_, err = Open("cpu", Options{Kernels: "v3"})
	require.ErrorContains(t, err, `kernels "v3": want v1 or v2`)
	for _, k := range []string{"", "v1", "v2"} {
		_, err = Open("cpu", Options{Kernels: k})
		require.NoError(t, err, k)
	}
	if len(Names()) == 1 {
		_, err = Open("cuda", Options{})
		require.ErrorContains(t, err, "built without CUDA")
	}
}
