package kv

import (
	"errors"
	"fmt"
)

// DefaultBlockSize is the number of tokens per KV block unless configured.
const DefaultBlockSize = 16

// ErrNoBlocks is returned when neither a free nor an evictable cached block is left.
var ErrNoBlocks = errors.New("kv: no free blocks")

// Fence reports whether the device work that last used some blocks has finished.
type Fence interface {
	Done() bool
}

type blockState uint8

const (
	stateFree blockState = iota
	stateCached
	stateOwned
)

type pendingRelease struct {
	blocks []int32
	fence  Fence  // nil when step-based
	step   uint64 // released once Complete(s) with s >= step
}

// BlockPool tracks N KV block ids: free list, reference counts, the prefix-hash
// index with its LRU of evictable cached blocks, and deferred releases.
type BlockPool struct {
	n, bs int

	refs  []int32
	state []blockState

	// Prefix cache; valid where hashed[b].
	hashed  []bool
	hashes  []uint64
	parents []uint64
	toks    []int32 // n*bs token ids of hashed blocks
	index   map[uint64]int32

	free []int32 // LIFO stack

	// LRU of cached blocks: head is least recently used.
	prev, next []int32
	head, tail int32
	nCached    int

	pending   []pendingRelease
	completed uint64 // all steps <= completed are done

	hashFn func(parent uint64, tokens []int32) uint64 // tests may force collisions
}

// NewBlockPool returns a pool of numBlocks ids of blockSize tokens each
// (blockSize <= 0 means DefaultBlockSize). All blocks start free.
func NewBlockPool(numBlocks, blockSize int) *BlockPool {
	if numBlocks <= 0 {
		panic("kv: numBlocks must be positive")
	}
	if blockSize <= 0 {
		blockSize = DefaultBlockSize
	}
	p := &BlockPool{
		n:       numBlocks,
		bs:      blockSize,
		refs:    make([]int32, numBlocks),
		state:   make([]blockState, numBlocks),
		hashed:  make([]bool, numBlocks),
		hashes:  make([]uint64, numBlocks),
		parents: make([]uint64, numBlocks),
		toks:    make([]int32, numBlocks*blockSize),
		index:   make(map[uint64]int32, numBlocks),
		free:    make([]int32, numBlocks),
		prev:    make([]int32, numBlocks),
		next:    make([]int32, numBlocks),
		head:    -1,
		tail:    -1,
		hashFn:  HashBlock,
	}
	// Stack top is the end of the slice: hand out 0, 1, 2, ... first.
	for i := range p.free {
		p.free[i] = int32(numBlocks - 1 - i)
	}
	for i := range p.prev {
		p.prev[i], p.next[i] = -1, -1
	}
	return p
}

// NumBlocks is the total number of block ids.
func (p *BlockPool) NumBlocks() int { return p.n }

// BlockSize is the number of tokens per block.
func (p *BlockPool) BlockSize() int { return p.bs }

// NumFree is the number of blocks on the free list (refcount 0, no hash).
func (p *BlockPool) NumFree() int { return len(p.free) }

// NumCached is the number of evictable cached blocks (refcount 0, hashed).
func (p *BlockPool) NumCached() int { return p.nCached }

// NumAvailable is what Alloc can hand out: NumFree + NumCached.
func (p *BlockPool) NumAvailable() int { return len(p.free) + p.nCached }

// Usage is the fraction of blocks that are owned (refcount > 0); cached
// evictable blocks count as unused, as in vLLM's kv_cache_usage_perc.
func (p *BlockPool) Usage() float64 {
	return float64(p.n-len(p.free)-p.nCached) / float64(p.n)
}

// RefCount is block b's reference count.
func (p *BlockPool) RefCount(b int32) int { return int(p.refs[b]) }

// IsCached reports whether b carries a prefix hash (owned or evictable).
func (p *BlockPool) IsCached(b int32) bool { return p.hashed[b] }

// Alloc takes one block with refcount 1: from the free list, else by evicting
// the least recently used cached block (its hash is dropped).
func (p *BlockPool) Alloc() (int32, error) {
	if len(p.free) == 0 && p.nCached == 0 {
		p.Poll()
	}
	if k := len(p.free); k > 0 {
		b := p.free[k-1]
		p.free = p.free[:k-1]
		p.state[b] = stateOwned
		p.refs[b] = 1
		return b, nil
	}
	if p.head >= 0 {
		b := p.head
		p.lruRemove(b)
		p.unhash(b)
		p.state[b] = stateOwned
		p.refs[b] = 1
		return b, nil
	}
	return -1, ErrNoBlocks
}

// AllocN appends n newly allocated blocks to dst, all or nothing.
func (p *BlockPool) AllocN(dst []int32, n int) ([]int32, error) {
	if n > p.NumAvailable() {
		p.Poll()
		if n > p.NumAvailable() {
			return dst, ErrNoBlocks
		}
	}
	for i := 0; i < n; i++ {
		b, _ := p.Alloc()
		dst = append(dst, b)
	}
	return dst, nil
}

// Ref adds a reference to b. b must be owned, or cached (a prefix hit), in
// which case it is revived out of the LRU.
func (p *BlockPool) Ref(b int32) {
	switch p.state[b] {
	case stateOwned:
		p.refs[b]++
	case stateCached:
		p.lruRemove(b)
		p.state[b] = stateOwned
		p.refs[b] = 1
	default:
		panic(fmt.Sprintf("kv: Ref of free block %d", b))
	}
}

// Share adds a reference to each block.
func (p *BlockPool) Share(blocks []int32) {
	for _, b := range blocks {
		p.Ref(b)
	}
}

// Release drops one reference to b. At zero a hashed block becomes cached
// (most recently used end of the LRU) and an unhashed one goes to the free list.
func (p *BlockPool) Release(b int32) {
	if p.state[b] != stateOwned {
		panic(fmt.Sprintf("kv: Release of unowned block %d", b))
	}
	p.refs[b]--
	if p.refs[b] > 0 {
		return
	}
	if p.hashed[b] {
		p.state[b] = stateCached
		p.lruPush(b)
		return
	}
	p.state[b] = stateFree
	p.free = append(p.free, b)
}

// ReleaseAll drops one reference to each block, last block first (so the
// tail of a sequence, least likely to be shared, is reused first).
func (p *BlockPool) ReleaseAll(blocks []int32) {
	for i := len(blocks) - 1; i >= 0; i-- {
		p.Release(blocks[i])
	}
}

// ReleaseAfter releases one reference to each block once fence.Done(). A nil
// fence, or one already done, releases at once. The slice is copied.
func (p *BlockPool) ReleaseAfter(blocks []int32, fence Fence) {
	if fence == nil || fence.Done() {
		p.ReleaseAll(blocks)
		return
	}
	p.checkOwned(blocks)
	p.pending = append(p.pending, pendingRelease{blocks: append([]int32(nil), blocks...), fence: fence})
}

// ReleaseAfterStep releases one reference to each block once Complete(s) has
// been called with s >= step. The slice is copied.
func (p *BlockPool) ReleaseAfterStep(blocks []int32, step uint64) {
	if step <= p.completed {
		p.ReleaseAll(blocks)
		return
	}
	p.checkOwned(blocks)
	p.pending = append(p.pending, pendingRelease{blocks: append([]int32(nil), blocks...), step: step})
}

func (p *BlockPool) checkOwned(blocks []int32) {
	for _, b := range blocks {
		if p.state[b] != stateOwned {
			panic(fmt.Sprintf("kv: deferred release of unowned block %d", b))
		}
	}
}

// Complete marks every step <= step as finished and runs the releases waiting
// on them (and on fences that are now done).
func (p *BlockPool) Complete(step uint64) {
	if step > p.completed {
		p.completed = step
	}
	p.Poll()
}

// Poll runs the deferred releases whose fence or step is done.
func (p *BlockPool) Poll() {
	if len(p.pending) == 0 {
		return
	}
	k := 0
	for _, pr := range p.pending {
		done := false
		if pr.fence != nil {
			done = pr.fence.Done()
		} else {
			done = pr.step <= p.completed
		}
		if done {
			p.ReleaseAll(pr.blocks)
			continue
		}
		p.pending[k] = pr
		k++
	}
	clear(p.pending[k:])
	p.pending = p.pending[:k]
}

// NumPending is the number of block references waiting on a fence or step.
func (p *BlockPool) NumPending() int {
	n := 0
	for _, pr := range p.pending {
		n += len(pr.blocks)
	}
	return n
}

// Lookup finds a hashed block (owned or cached) whose parent hash and token
// ids equal the arguments. It does not take a reference: call Ref on a hit.
// The returned hash is the chain hash of (parent, tokens) whether or not it hit.
func (p *BlockPool) Lookup(parent uint64, tokens []int32) (block int32, hash uint64, ok bool) {
	h := p.hashFn(parent, tokens)
	b, found := p.index[h]
	if !found || !p.sameContent(b, parent, tokens) {
		return -1, h, false
	}
	return b, h, true
}

// Register gives owned block b the chain hash of (parent, tokens), a full
// block's token ids, so later lookups can share it. If another block already
// holds identical content under that hash, b stays unhashed (the other one is
// the canonical copy) and ok is true. If the hash is held by different content
// (a collision) b stays unhashed and ok is false: the caller should stop
// registering the rest of this chain.
func (p *BlockPool) Register(b int32, parent uint64, tokens []int32) (hash uint64, ok bool) {
	if len(tokens) != p.bs {
		panic(fmt.Sprintf("kv: Register with %d tokens, block size %d", len(tokens), p.bs))
	}
	if p.state[b] != stateOwned {
		panic(fmt.Sprintf("kv: Register of unowned block %d", b))
	}
	h := p.hashFn(parent, tokens)
	if p.hashed[b] {
		return h, p.hashes[b] == h && p.sameContent(b, parent, tokens)
	}
	if o, found := p.index[h]; found {
		return h, p.sameContent(o, parent, tokens)
	}
	p.hashed[b] = true
	p.hashes[b] = h
	p.parents[b] = parent
	copy(p.toks[int(b)*p.bs:], tokens)
	p.index[h] = b
	return h, true
}

func (p *BlockPool) sameContent(b int32, parent uint64, tokens []int32) bool {
	if p.parents[b] != parent || len(tokens) != p.bs {
		return false
	}
	stored := p.toks[int(b)*p.bs : int(b+1)*p.bs]
	for i, t := range tokens {
		if stored[i] != t {
			return false
		}
	}
	return true
}

func (p *BlockPool) unhash(b int32) {
	if !p.hashed[b] {
		return
	}
	if p.index[p.hashes[b]] == b {
		delete(p.index, p.hashes[b])
	}
	p.hashed[b] = false
	p.hashes[b] = 0
	p.parents[b] = 0
}

func (p *BlockPool) lruPush(b int32) {
	p.prev[b], p.next[b] = p.tail, -1
	if p.tail >= 0 {
		p.next[p.tail] = b
	} else {
		p.head = b
	}
	p.tail = b
	p.nCached++
}

func (p *BlockPool) lruRemove(b int32) {
	pv, nx := p.prev[b], p.next[b]
	if pv >= 0 {
		p.next[pv] = nx
	} else {
		p.head = nx
	}
	if nx >= 0 {
		p.prev[nx] = pv
	} else {
		p.tail = pv
	}
	p.prev[b], p.next[b] = -1, -1
	p.nCached--
}

// FNV-1a 64-bit parameters.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// HashBlock is the chain hash of a full block: 64-bit FNV-1a over the parent
// hash (8 bytes, little endian) followed by each token id (4 bytes, little
// endian). The first block of a sequence uses parent 0.
func HashBlock(parent uint64, tokens []int32) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < 8; i++ {
		h ^= (parent >> (8 * i)) & 0xff
		h *= fnvPrime
	}
	for _, t := range tokens {
		u := uint32(t)
		h ^= uint64(u & 0xff)
		h *= fnvPrime
		h ^= uint64((u >> 8) & 0xff)
		h *= fnvPrime
		h ^= uint64((u >> 16) & 0xff)
		h *= fnvPrime
		h ^= uint64(u >> 24)
		h *= fnvPrime
	}
	return h
}

// Check verifies the pool's invariants: every block in exactly one state, the
// free list and LRU well formed and disjoint, refcounts positive exactly for
// owned blocks, the hash index and per-block hashes in agreement, and deferred
// releases holding only owned blocks.
func (p *BlockPool) Check() error {
	seen := make([]uint8, p.n) // 1 free list, 2 LRU
	for _, b := range p.free {
		if b < 0 || int(b) >= p.n {
			return fmt.Errorf("kv: free list holds bad id %d", b)
		}
		if seen[b] != 0 {
			return fmt.Errorf("kv: block %d twice on the free list", b)
		}
		seen[b] = 1
		if p.state[b] != stateFree || p.refs[b] != 0 || p.hashed[b] {
			return fmt.Errorf("kv: free-list block %d has state %d refs %d hashed %v", b, p.state[b], p.refs[b], p.hashed[b])
		}
	}
	n := 0
	prev := int32(-1)
	for b := p.head; b >= 0; b = p.next[b] {
		if n > p.n {
			return errors.New("kv: LRU list has a cycle")
		}
		if seen[b] != 0 {
			return fmt.Errorf("kv: block %d both free and cached (or twice in LRU)", b)
		}
		seen[b] = 2
		if p.prev[b] != prev {
			return fmt.Errorf("kv: LRU prev link of %d is %d, want %d", b, p.prev[b], prev)
		}
		if p.state[b] != stateCached || p.refs[b] != 0 || !p.hashed[b] {
			return fmt.Errorf("kv: LRU block %d has state %d refs %d hashed %v", b, p.state[b], p.refs[b], p.hashed[b])
		}
		prev = b
		n++
	}
	if prev != p.tail || n != p.nCached {
		return fmt.Errorf("kv: LRU tail %d/%d, count %d/%d", prev, p.tail, n, p.nCached)
	}
	nHashed := 0
	for b := 0; b < p.n; b++ {
		switch p.state[b] {
		case stateFree:
			if seen[b] != 1 {
				return fmt.Errorf("kv: free block %d not on the free list", b)
			}
		case stateCached:
			if seen[b] != 2 {
				return fmt.Errorf("kv: cached block %d not in the LRU", b)
			}
		case stateOwned:
			if seen[b] != 0 || p.refs[b] <= 0 {
				return fmt.Errorf("kv: owned block %d with refs %d listed %d", b, p.refs[b], seen[b])
			}
		default:
			return fmt.Errorf("kv: block %d in bad state %d", b, p.state[b])
		}
		if p.hashed[b] {
			nHashed++
			if o, ok := p.index[p.hashes[b]]; !ok || o != int32(b) {
				return fmt.Errorf("kv: hashed block %d (hash %x) not indexed (index has %d)", b, p.hashes[b], o)
			}
			if p.hashFn(p.parents[b], p.toks[b*p.bs:(b+1)*p.bs]) != p.hashes[b] {
				return fmt.Errorf("kv: block %d stored content does not hash to %x", b, p.hashes[b])
			}
		}
	}
	if nHashed != len(p.index) {
		return fmt.Errorf("kv: %d hashed blocks but %d index entries", nHashed, len(p.index))
	}
	pend := p.pendingCounts()
	for b, c := range pend {
		if c > p.refs[b] {
			return fmt.Errorf("kv: block %d has %d deferred releases but refcount %d", b, c, p.refs[b])
		}
	}
	return nil
}

func (p *BlockPool) pendingCounts() []int32 {
	c := make([]int32, p.n)
	for _, pr := range p.pending {
		for _, b := range pr.blocks {
			c[b]++
		}
	}
	return c
}

// CheckRefs checks that each block's refcount equals holders[b] (references
// the caller knows of, e.g. counted over every block table) plus the
// references held by deferred releases. len(holders) must be NumBlocks.
func (p *BlockPool) CheckRefs(holders []int32) error {
	if len(holders) != p.n {
		return fmt.Errorf("kv: CheckRefs with %d counts for %d blocks", len(holders), p.n)
	}
	pend := p.pendingCounts()
	for b := range holders {
		if want := holders[b] + pend[b]; p.refs[b] != want {
			return fmt.Errorf("kv: block %d refcount %d, holders %d + deferred %d", b, p.refs[b], holders[b], pend[b])
		}
	}
	return nil
}
