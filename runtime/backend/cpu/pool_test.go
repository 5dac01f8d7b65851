package cpu

import (
	"runtime"
	"sync"
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
		c.parallel(len(covered), 1, 1<<30, func(lo, hi int) {
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

func TestPoolPiecesAreAligned(t *testing.T) {
	c := New(Options{Threads: 3})
	defer c.Close()
	for _, n := range []int{1, 3, 4, 5, 17, 64, 100, 1001} {
		for _, align := range []int{1, 4, 16} {
			var mu sync.Mutex
			covered := make([]int, n)
			c.parallel(n, align, 1<<30, func(lo, hi int) {
				mu.Lock()
				defer mu.Unlock()
				require.True(t, lo < hi, "empty piece [%d, %d)", lo, hi)
				require.Zero(t, lo%align, "piece [%d, %d) of %d starts off the %d grid", lo, hi, n, align)
				require.True(t, hi%align == 0 || hi == n, "piece [%d, %d) of %d ends off the %d grid", lo, hi, n, align)
				for i := lo; i < hi; i++ {
					covered[i]++
				}
			})
			for i, k := range covered {
				require.Equal(t, 1, k, "n=%d align=%d element %d", n, align, i)
			}
		}
	}
}

func TestPoolSmallWorkRunsInline(t *testing.T) {
	c := New(Options{Threads: 4})
	defer c.Close()
	calls := 0 // not atomic: an inline op runs on this goroutine only
	c.parallel(1000, 1, minChunkWork-1, func(lo, hi int) {
		calls++
		require.Equal(t, [2]int{0, 1000}, [2]int{lo, hi})
	})
	require.Equal(t, 1, calls)
	require.Equal(t, 1, c.chunks(1000, 2*minChunkWork-1))
	require.Equal(t, 2, c.chunks(1000, 2*minChunkWork))
	require.Equal(t, 4, c.chunks(1000, 1<<40))
	require.Equal(t, 3, c.chunks(3, 1<<40), "never more chunks than items")
}

// A worker that wakes late holds the finished task: it must find nothing to run.
func TestPoolLateWorkerRunsNothing(t *testing.T) {
	c := New(Options{Threads: 2})
	defer c.Close()
	var calls atomic.Int32
	fn := func(lo, hi int) { calls.Add(1) }
	require.True(t, c.pool.run(100, 2, 1, fn))
	n := calls.Load()
	require.Equal(t, int32(2*piecesPerChunk), n)
	w := c.pool.workers[0]
	if late := w.task.Load(); late != nil {
		late.work()
		late.work()
	}
	require.Equal(t, n, calls.Load())
}

// Two lanes issuing ops at once: one holds the pool, the other splits over fresh
// goroutines; both cover their ranges exactly once.
func TestPoolConcurrentLanes(t *testing.T) {
	c := New(Options{Threads: 2})
	defer c.Close()
	var wg sync.WaitGroup
	for lane := 0; lane < 4; lane++ {
		wg.Go(func() {
			for round := 0; round < 100; round++ {
				var covered [257]atomic.Int32
				c.parallel(len(covered), 4, 1<<30, func(lo, hi int) {
					for i := lo; i < hi; i++ {
						covered[i].Add(1)
					}
				})
				for i := range covered {
					if covered[i].Load() != 1 {
						t.Errorf("lane %d round %d: element %d covered %d times", lane, round, i, covered[i].Load())
						return
					}
				}
			}
		})
	}
	wg.Wait()
}
