//go:build cuda

package cuda

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/vireo-ai/vireo/cgo"
	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/cuda/kmodel"
)

// Kernels v2 of the attention and the sampler (Options.Kernels): vireo_attention2
// (attention2.cu: split-KV decode with GQA grouping, tensor-core prefill tiles) and
// vireo_sample2 (sampling2.cu). Their launch configurations come from kmodel, whose Go
// models of the kernels' thread→element mappings are tested without a GPU; nothing here
// has run on a card yet (GPU run C).

// attn2Config is the configuration Attention launches vireo_attention2 with.
func attn2Config() kmodel.Attn2Config { return kmodel.DefaultAttn2() }

// cgoAttn2 converts a kmodel configuration to the C struct.
func cgoAttn2(c kmodel.Attn2Config) *cgo.Attention2Config {
	p := int32(0)
	if c.Prefill {
		p = 1
	}
	return &cgo.Attention2Config{SplitLen: int32(c.SplitLen), MaxSplits: int32(c.MaxSplits), Warps: int32(c.Warps),
		Prefill: p, BM: int32(c.BM), BN: int32(c.BN), Fault: int32(c.Fault)}
}

// cgoSample2 converts a kmodel configuration to the C struct.
func cgoSample2(c kmodel.Sample2Config) *cgo.Sample2Config {
	return &cgo.Sample2Config{Threads: int32(c.Threads), Chunk: int32(c.Chunk), Fault: int32(c.Fault)}
}

// sample2Config is the configuration DecodeLoop samples rows × vocab with.
func (c *Backend) sample2Config(rows, vocab int) kmodel.Sample2Config {
	sms := c.Info.Multiprocessors
	if sms <= 0 {
		sms = 132
	}
	return kmodel.Sample2Choose(rows, vocab, sms)
}

// attention2 is Attention on kernels v2, the operands checked by Attention.
func (c *Backend) attention2(op string, st *stream, out, q backend.Tensor, o, qp, kc, vc unsafe.Pointer, dt cgo.DType,
	kv *backend.KVCache, at *backend.KVIndex, h *backend.AttnHeads) error {
	nh, nkv, hd, bs, n := h.Heads, h.KVHeads, h.HeadDim, kv.BlockSize, q.Rows
	cfg := cgoAttn2(attn2Config())
	wsBytes, err := cgo.Attention2WorkspaceBytes(n, nh, nkv, hd, at.MaxCtx, cfg)
	if err != nil {
		return wrap(op, err, "v2 workspace of %d rows, %d heads, %d kv heads, head dim %d, max context %d", n, nh, nkv, hd, at.MaxCtx)
	}
	ws, err := c.attn2Workspace(st, wsBytes)
	if err != nil {
		return wrap(op, err, "v2 workspace of %d bytes (%d rows)", wsBytes, n)
	}
	_, _, seqs, rowSeq, tables, err := c.kvIndex(op, "attention", st, kv, at, n, at.MaxCtx, 0)
	if err != nil {
		return err
	}
	st.wrote(out)
	return wrap(op, cgo.Attention2(st.s, &cgo.AttentionArgs{
		DType: dt, Out: o, Q: qp, LdOut: out.Cols, LdQ: q.Cols, KCache: kc, VCache: vc,
		Seqs: seqs, RowSeq: rowSeq, BlockTables: tables,
		NRows: n, NSeqs: n, Heads: nh, KVHeads: nkv, HeadDim: hd, BlockSize: bs, MaxCtx: at.MaxCtx,
		Scale: h.Scale, Workspace: ws, WorkspaceBytes: wsBytes,
	}, cfg), "v2: q %s, out %s, heads %d/%d of %d, block %d, max context %d", q, out, nh, nkv, hd, bs, at.MaxCtx)
}

// attn2Workspace returns the stream's vireo_attention2 workspace of at least n bytes,
// its counters zero. Growing allocates a zeroed one after the stream's queued work (a
// capture cannot grow it: issue the step once before capturing); the old one is freed
// unless a captured graph still reads it.
func (c *Backend) attn2Workspace(st *stream, n int) (unsafe.Pointer, error) {
	if st.attn2WS != nil && st.attn2WS.n >= n {
		st.attn2Captured = st.attn2Captured || st.capturing
		return st.attn2WS.ptr, nil
	}
	if st.capturing || c.capturing.Load() > 0 {
		have := 0
		if st.attn2WS != nil {
			have = st.attn2WS.n
		}
		return nil, fmt.Errorf("attention workspace must grow from %d to %d bytes during a capture (issue the step once before capturing, so that it is sized): %w", have, n, errCapturing)
	}
	if err := st.s.Sync(); err != nil {
		return nil, err
	}
	if st.attn2WS != nil {
		if !st.attn2Captured {
			if err := c.free(st.attn2WS); err != nil {
				return nil, err
			}
		}
		st.attn2WS, st.attn2Captured = nil, false
	}
	b, err := c.alloc(backend.I8, max(n, 1<<20))
	if err != nil {
		return nil, err
	}
	if err := cgo.Memset(b.ptr, 0, b.n, st.s); err != nil {
		return nil, fmt.Errorf("zeroing %d bytes: %w", b.n, errors.Join(err, c.free(b)))
	}
	st.attn2WS = b
	return b.ptr, nil
}

// sample2Workspace returns the stream's vireo_sample2 workspace of need bytes for shape
// (rows, vocab, chunk), its must-be-zero parts zero: allocated zeroed when it must grow
// (after the stream's work), zeroed whole again when the shape changes (each call leaves
// its own shape's parts zero, but another shape's layout overlaps them differently).
func (c *Backend) sample2Workspace(st *stream, need int, shape [3]int) (unsafe.Pointer, error) {
	if st.sampleWS == nil || st.sampleWS.n < need {
		if err := st.s.Sync(); err != nil {
			return nil, err
		}
		if st.sampleWS != nil {
			if err := c.free(st.sampleWS); err != nil {
				return nil, err
			}
			st.sampleWS = nil
		}
		b, err := c.alloc(backend.I8, need)
		if err != nil {
			return nil, err
		}
		if err := cgo.Memset(b.ptr, 0, need, st.s); err != nil {
			return nil, errors.Join(err, c.free(b))
		}
		st.sampleWS, st.sampleShape = b, shape
		return b.ptr, nil
	}
	if st.sampleShape != shape {
		if err := cgo.Memset(st.sampleWS.ptr, 0, need, st.s); err != nil {
			return nil, err
		}
		st.sampleShape = shape
	}
	return st.sampleWS.ptr, nil
}
