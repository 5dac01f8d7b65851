package specdec

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPropose(t *testing.T) {
	for _, c := range []struct {
		name       string
		hist       []int32
		minN, maxN int
		k          int
		want       []int32
	}{
		{"repeat", []int32{1, 2, 3, 4, 5, 1, 2, 3}, 1, 3, 3, []int32{4, 5, 1}},
		{"k beyond the history", []int32{1, 2, 3, 4, 1, 2}, 2, 2, 5, []int32{3, 4, 1, 2}},
		{"longest n wins", []int32{7, 9, 5, 8, 9, 5, 6, 7, 9, 5}, 1, 3, 2, []int32{8, 9}}, // n=2 would give 6, 7
		{"shorter n when the long one misses", []int32{7, 9, 5, 8, 9, 5, 6, 4, 9, 5}, 2, 3, 2, []int32{6, 4}},
		{"most recent occurrence", []int32{1, 2, 9, 1, 2, 8, 1, 2}, 2, 2, 1, []int32{8}},
		{"period 1", []int32{4, 4, 4}, 1, 2, 3, []int32{4}},
		{"no match", []int32{1, 2, 3, 4}, 1, 3, 3, nil},
		{"min too long", []int32{1, 2, 1, 2}, 3, 3, 3, nil},
		{"one token", []int32{1}, 1, 3, 3, nil},
		{"empty", nil, 1, 3, 3, nil},
		{"k 0", []int32{1, 1}, 1, 1, 0, nil},
	} {
		got := Propose(nil, c.hist, c.minN, c.maxN, c.k)
		require.Equal(t, c.want, got, c.name)
	}
	// Appends to dst.
	require.Equal(t, []int32{0, 2}, Propose([]int32{0}, []int32{1, 2, 1}, 1, 1, 1))
}

func BenchmarkPropose(b *testing.B) {
	hist := make([]int32, 4096)
	for i := range hist {
		hist[i] = int32(i*7919) % 500
	}
	var dst []int32
	for b.Loop() {
		dst = Propose(dst[:0], hist, 2, 5, 5)
	}
}
