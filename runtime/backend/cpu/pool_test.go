package cpu

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPoolRunsEveryChunkAndStops(t *testing.T) {
	before := runtime.NumGoroutine()
	c := New(Options{Threads: 4})
	var covered [1000]atomic.Int32
	for round := 0; round < 200; round++ {
		c.parallel(len(covered), 1<<30, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				covered[i].Add(1)
			}
		})
		if round%50 == 0 {
			time.Sleep(2 * time.Millisecond) // let the workers park and wake again
		}
	}
	for i := range covered {
		require.Equal(t, int32(200), covered[i].Load(), "element %d", i)
	}
	require.NoError(t, c.Close())
	// Poll by hand: require.Eventually runs goroutines of its own.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	require.LessOrEqual(t, runtime.NumGoroutine(), before, "the workers exit on Close")
}
