package cuda

import (
	"fmt"
	"slices"
	"sort"
	"testing"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/backendtest"
	"github.com/vireo-ai/vireo/runtime/backend/cuda/kmodel"
)

// attn2Paths lists the paths of vireo_attention2 (default configuration) that a pass
// of the given rows takes, as kmodel models its dispatch: the plan's prefill tiles
// (full, row tail, KV tiles whole or with a tail, one or several), the rows the decode
// kernel takes in a prefill pass, and the decode kernel's lane variant, GQA group
// width, head chunks and splits.
func attn2Paths(cfg kmodel.Attn2Config, heads, kvHeads, headDim int, pos, seq []int32, valid []bool, width, maxCtx int) map[string]bool {
	got := map[string]bool{}
	n := len(pos)
	// The harness's views are 128-byte aligned (64-element guards) and ld = heads·hd.
	vec16 := headDim%8 == 0
	prefill := cfg.UsesPrefill(n, headDim) && vec16
	var tiles []kmodel.Tile
	if prefill {
		p := &kmodel.AttnProblem{Rows: n, Seqs: make([]int32, 4*n), RowSeq: make([]int32, n)}
		for i := range n {
			p.Seqs[4*i], p.Seqs[4*i+1], p.Seqs[4*i+2], p.Seqs[4*i+3] = int32(i), 1, max(pos[i], 0), seq[i]*int32(width)
			p.RowSeq[i] = -1
			if valid[i] {
				p.RowSeq[i] = int32(i)
			}
		}
		tiles = p.Plan(cfg.BM)
		for t, tl := range tiles {
			if !tl.Prefill {
				continue
			}
			k := fmt.Sprintf("prefill hd=%d", headDim)
			got[k] = true
			if rows := min(cfg.BM, n-t*cfg.BM); rows < cfg.BM {
				got[k+" row tail"] = true
			} else {
				got[k+" full tile"] = true
			}
			if tl.MaxCtx%cfg.BN != 0 {
				got[k+" kv tail"] = true
			} else {
				got[k+" kv whole"] = true
			}
			if tl.MaxCtx > cfg.BN {
				got[k+" several kv tiles"] = true
			}
		}
	}
	group := heads / kvHeads
	gm := kmodel.GroupMax(min(group, 8))
	vec, lpk, nv := kmodel.DecodeVariant(headDim, vec16)
	for i := range n {
		if prefill && tiles[i/cfg.BM].Prefill {
			continue
		}
		if prefill {
			got["prefill pass, decode rows"] = true
		}
		if !valid[i] {
			got["decode zero rows"] = true
			continue
		}
		got[fmt.Sprintf("decode vec=%d lpk=%d nv=%d", vec, lpk, nv)] = true
		got[fmt.Sprintf("decode group width %d", gm)] = true
		if group > 8 {
			got["decode several head chunks"] = true
		}
		if group%gm != 0 || (group > 8 && group%8 != 0) {
			got["decode partial head group"] = true
		}
		ctx := int(pos[i]) + 1
		length, ns := cfg.DecodeSplits(ctx)
		if ns > 1 {
			got["decode several splits"] = true
			if ctx%length != 0 {
				got["decode split tail"] = true
			}
		}
		if length > cfg.SplitLen {
			got["decode splits longer than split_len"] = true
		}
		if _, all := cfg.DecodeSplits(maxCtx); all > ns {
			got["decode splits past the row's context"] = true
		}
	}
	return got
}

// attn2AllPaths is every path attn2Paths names.
func attn2AllPaths() []string {
	var all []string
	for _, hd := range []int{64, 128} {
		k := fmt.Sprintf("prefill hd=%d", hd)
		all = append(all, k, k+" full tile", k+" row tail", k+" kv tail", k+" kv whole", k+" several kv tiles")
	}
	all = append(all, "prefill pass, decode rows", "decode zero rows")
	for _, hd := range []int{32, 64, 128, 256} {
		vec, lpk, nv := kmodel.DecodeVariant(hd, true)
		all = append(all, fmt.Sprintf("decode vec=%d lpk=%d nv=%d", vec, lpk, nv))
	}
	for _, hd := range []int{60, 124, 188, 252} {
		vec, lpk, nv := kmodel.DecodeVariant(hd, false)
		all = append(all, fmt.Sprintf("decode vec=%d lpk=%d nv=%d", vec, lpk, nv))
	}
	for _, gm := range []int{1, 2, 4, 8} {
		all = append(all, fmt.Sprintf("decode group width %d", gm))
	}
	return append(all, "decode several head chunks", "decode partial head group", "decode several splits",
		"decode split tail", "decode splits longer than split_len", "decode splits past the row's context")
}

// TestAttention2CasesReachEveryPath: the default backendtest attention cases (what the
// GPU check's ops phase and TestOps run on kernels v2) reach every path of
// vireo_attention2 with its default configuration: both prefill head dims with full
// and tail tiles of rows and of keys, the decode rows of a prefill pass, every decode
// lane variant (16-byte and 4-byte loads), every GQA group width, several head chunks,
// split tails and long splits. It needs no GPU (kmodel models the dispatch), so plain
// `go test` runs it.
func TestAttention2CasesReachEveryPath(t *testing.T) {
	cfg := kmodel.DefaultAttn2()
	got := map[string][]string{}
	for _, c := range backendtest.Cases(backendtest.Options{Ops: []string{backendtest.OpAttention}, DTypes: []backend.DType{backend.F16}}) {
		pos, seq, valid, width, maxCtx := backendtest.AttentionRows(c)
		for p := range attn2Paths(cfg, c.Heads, c.KVHeads, c.HeadDim, pos, seq, valid, width, maxCtx) {
			got[p] = append(got[p], c.Name)
		}
	}
	var missing []string
	for _, p := range attn2AllPaths() {
		if len(got[p]) == 0 {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		var have []string
		for p := range got {
			have = append(have, p)
		}
		sort.Strings(have)
		t.Errorf("no default attention case reaches %q (reached: %q)", missing, have)
	}
	for p := range got {
		if !slices.Contains(attn2AllPaths(), p) {
			t.Errorf("path %q is not in attn2AllPaths", p)
		}
	}
}
