package kv

import (
	"math/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func toks(start, n int) []int32 {
	t := make([]int32, n)
	for i := range t {
		t[i] = int32(start + i)
	}
	return t
}

func TestAllocDeterministicAndRelease(t *testing.T) {
	p := NewBlockPool(4, 0)
	assert.Equal(t, DefaultBlockSize, p.BlockSize())
	var got []int32
	for i := 0; i < 4; i++ {
		b, err := p.Alloc()
		require.NoError(t, err)
		got = append(got, b)
	}
	assert.Equal(t, []int32{0, 1, 2, 3}, got)
	_, err := p.Alloc()
	assert.ErrorIs(t, err, ErrNoBlocks)
	assert.Equal(t, 1.0, p.Usage())
	require.NoError(t, p.Check())

	p.Release(2)
	p.Release(1)
	b, err := p.Alloc()
	require.NoError(t, err)
	assert.Equal(t, int32(1), b, "LIFO: last released first")
	assert.Equal(t, 1, p.NumFree())
	require.NoError(t, p.Check())
}

func TestAllocNAllOrNothing(t *testing.T) {
	p := NewBlockPool(3, 4)
	bl, err := p.AllocN(nil, 4)
	assert.ErrorIs(t, err, ErrNoBlocks)
	assert.Empty(t, bl)
	assert.Equal(t, 3, p.NumFree())
	bl, err = p.AllocN(bl, 3)
	require.NoError(t, err)
	assert.Len(t, bl, 3)
	require.NoError(t, p.Check())
}

func TestRefcounts(t *testing.T) {
	p := NewBlockPool(2, 4)
	b, _ := p.Alloc()
	p.Ref(b)
	p.Share([]int32{b})
	assert.Equal(t, 3, p.RefCount(b))
	p.Release(b)
	p.Release(b)
	assert.Equal(t, 1, p.NumFree())
	p.Release(b)
	assert.Equal(t, 2, p.NumFree())
	assert.Panics(t, func() { p.Release(b) })
	assert.Panics(t, func() { p.Ref(b) })
	require.NoError(t, p.Check())
}

func TestPrefixCacheReviveAndEvictLRU(t *testing.T) {
	p := NewBlockPool(3, 4)
	a, _ := p.Alloc()
	b, _ := p.Alloc()
	ha, ok := p.Register(a, 0, toks(0, 4))
	require.True(t, ok)
	hb, ok := p.Register(b, ha, toks(4, 4))
	require.True(t, ok)
	assert.Equal(t, HashBlock(0, toks(0, 4)), ha)

	// Hit while owned.
	got, h, hit := p.Lookup(0, toks(0, 4))
	assert.True(t, hit)
	assert.Equal(t, a, got)
	assert.Equal(t, ha, h)
	// Same tokens, other parent: miss.
	_, _, hit = p.Lookup(hb, toks(0, 4))
	assert.False(t, hit)

	p.ReleaseAll([]int32{a, b}) // b released first: b is LRU
	assert.Equal(t, 2, p.NumCached())
	assert.Equal(t, 1, p.NumFree())
	assert.Equal(t, 0.0, p.Usage())
	require.NoError(t, p.Check())

	// Revive a.
	got, _, hit = p.Lookup(0, toks(0, 4))
	require.True(t, hit)
	p.Ref(got)
	assert.Equal(t, 1, p.NumCached())
	require.NoError(t, p.Check())

	// Free list first, then eviction of LRU (b).
	c, _ := p.Alloc()
	assert.NotEqual(t, b, c)
	d, err := p.Alloc()
	require.NoError(t, err)
	assert.Equal(t, b, d, "evicts the least recently used cached block")
	assert.False(t, p.IsCached(d))
	_, _, hit = p.Lookup(ha, toks(4, 4))
	assert.False(t, hit, "evicted block's hash is dropped")
	require.NoError(t, p.Check())
}

func TestRegisterDuplicateAndCollision(t *testing.T) {
	p := NewBlockPool(4, 2)
	a, _ := p.Alloc()
	b, _ := p.Alloc()
	_, ok := p.Register(a, 0, []int32{1, 2})
	require.True(t, ok)
	_, ok = p.Register(b, 0, []int32{1, 2})
	assert.True(t, ok, "identical content: fine, b stays unhashed")
	assert.False(t, p.IsCached(b))

	// Force every hash to collide.
	p.hashFn = func(uint64, []int32) uint64 { return 42 }
	q := NewBlockPool(4, 2)
	q.hashFn = p.hashFn
	x, _ := q.Alloc()
	y, _ := q.Alloc()
	_, ok = q.Register(x, 0, []int32{1, 2})
	require.True(t, ok)
	_, ok = q.Register(y, 0, []int32{3, 4})
	assert.False(t, ok, "collision is reported")
	_, _, hit := q.Lookup(0, []int32{3, 4})
	assert.False(t, hit, "collision never yields a wrong hit")
	got, _, hit := q.Lookup(0, []int32{1, 2})
	assert.True(t, hit)
	assert.Equal(t, x, got)
	require.NoError(t, q.Check())
}

type flag struct{ done bool }

func (f *flag) Done() bool { return f.done }

func TestDeferredRelease(t *testing.T) {
	p := NewBlockPool(4, 4)
	bl, _ := p.AllocN(nil, 2)
	f := &flag{}
	p.ReleaseAfter(bl, f)
	assert.Equal(t, 2, p.NumFree())
	assert.Equal(t, 2, p.NumPending())
	require.NoError(t, p.Check())
	require.NoError(t, p.CheckRefs([]int32{0, 0, 0, 0}))
	p.Poll()
	assert.Equal(t, 2, p.NumFree())
	f.done = true
	p.Poll()
	assert.Equal(t, 4, p.NumFree())

	bl, _ = p.AllocN(bl[:0], 4)
	p.ReleaseAfterStep(bl[:2], 7)
	p.ReleaseAfter(bl[2:3], nil) // nil fence: at once
	assert.Equal(t, 1, p.NumFree())
	p.Complete(6)
	assert.Equal(t, 1, p.NumFree())
	p.Complete(7)
	assert.Equal(t, 3, p.NumFree())
	p.ReleaseAfterStep(bl[3:], 5) // already complete
	assert.Equal(t, 4, p.NumFree())

	// Alloc polls fences when it runs dry.
	bl, _ = p.AllocN(bl[:0], 4)
	f2 := &flag{}
	p.ReleaseAfter(bl[:1], f2)
	_, err := p.Alloc()
	assert.ErrorIs(t, err, ErrNoBlocks)
	f2.done = true
	_, err = p.Alloc()
	assert.NoError(t, err)
	require.NoError(t, p.Check())
}

func TestCheckDetectsCorruption(t *testing.T) {
	p := NewBlockPool(3, 4)
	b, _ := p.Alloc()
	p.free = append(p.free, b) // both free and owned
	assert.Error(t, p.Check())

	p = NewBlockPool(3, 4)
	b, _ = p.Alloc()
	p.Register(b, 0, toks(0, 4))
	delete(p.index, p.hashes[b])
	assert.Error(t, p.Check())

	p = NewBlockPool(3, 4)
	b, _ = p.Alloc()
	assert.Error(t, p.CheckRefs([]int32{2, 0, 0}))
	assert.NoError(t, p.CheckRefs([]int32{1, 0, 0}))
	_ = b
}

// TestPoolRandom drives random operations against a shadow model of the
// references and checks the invariants after every one.
func TestPoolRandom(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewSource(seed))
		const n, bs = 16, 2
		p := NewBlockPool(n, bs)
		if seed%2 == 0 {
			p.hashFn = func(parent uint64, t []int32) uint64 { return (parent + uint64(t[0])) % 5 } // many collisions
		}
		var held []int32 // our references, with repeats
		step := uint64(0)
		for it := 0; it < 3000; it++ {
			switch rng.Intn(7) {
			case 0, 1:
				if b, err := p.Alloc(); err == nil {
					held = append(held, b)
				} else {
					require.Zero(t, p.NumAvailable())
				}
			case 2:
				if len(held) > 0 {
					i := rng.Intn(len(held))
					p.Release(held[i])
					held = append(held[:i], held[i+1:]...)
				}
			case 3:
				if len(held) > 0 {
					b := held[rng.Intn(len(held))]
					p.Register(b, uint64(rng.Intn(3)), []int32{int32(rng.Intn(4)), int32(rng.Intn(4))})
				}
			case 4:
				parent, tk := uint64(rng.Intn(3)), []int32{int32(rng.Intn(4)), int32(rng.Intn(4))}
				if b, _, ok := p.Lookup(parent, tk); ok {
					require.True(t, p.sameContent(b, parent, tk))
					p.Ref(b)
					held = append(held, b)
				}
			case 5:
				if len(held) > 0 {
					i := rng.Intn(len(held))
					step++
					p.ReleaseAfterStep(held[i:i+1], step)
					held = append(held[:i], held[i+1:]...)
				}
			case 6:
				p.Complete(step - uint64(rng.Intn(2)))
			}
			require.NoError(t, p.Check(), "seed %d it %d", seed, it)
			counts := make([]int32, n)
			for _, b := range held {
				counts[b]++
			}
			require.NoError(t, p.CheckRefs(counts), "seed %d it %d", seed, it)
		}
		p.Complete(step)
		p.ReleaseAll(held)
		assert.Equal(t, n, p.NumAvailable())
	}
}

func BenchmarkAllocRelease(b *testing.B) {
	p := NewBlockPool(1024, 16)
	bl := make([]int32, 0, 64)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		bl, _ = p.AllocN(bl[:0], 64)
		p.ReleaseAll(bl)
	}
}
