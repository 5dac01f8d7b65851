// Package kv is the bookkeeping side of the paged KV cache: which block ids are
// free, who holds them, and which full blocks carry a content hash for prefix
// reuse. The KV memory itself (the per-layer K and V pools
// [num_blocks][kv_heads][block_size][head_dim]) belongs to the backend; this
// package only hands out int32 block ids in 0..N-1.
//
// A block is in exactly one of three states:
//
//   - free: refcount 0, no hash, on the free list (LIFO; the initial order hands
//     out 0, 1, 2, ... so runs are deterministic);
//   - cached: refcount 0 but it carries a content hash, so a later prefix lookup
//     can revive it; cached blocks sit in an LRU list and are evicted (their hash
//     dropped) when Alloc finds the free list empty;
//   - owned: refcount > 0. A shared prefix block has one reference per holder.
//
// Prefix hashes chain: the hash of a full block is a 64-bit FNV-1a over
// (parent block hash, the block's token ids), the first block of a sequence
// using parent 0. The pool stores each hashed block's parent hash and token ids
// and compares them on every lookup and registration, so a 64-bit collision is
// detected (a miss, or a refused registration) instead of silently sharing the
// wrong KV. What is not compared is the parent's own content, only its hash:
// a wrong hit needs two different prefixes whose chain hashes are equal.
//
// Deferred release: memory the device may still be reading is not reused early.
// ReleaseAfter(blocks, fence) keeps the references until fence.Done();
// ReleaseAfterStep(blocks, step) keeps them until Complete(s) with s >= step.
// A nil fence means "already done" (the CPU case).
//
// BlockPool is not safe for concurrent use; its owner (the scheduler) serialises
// calls. Check verifies the internal invariants and is meant for tests.
package kv
