package model

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/loader"
)

// loadStories binds stories260K.bin to the CPU backend (runtime/llm's tests cover
// loading with the tokenizer and chat template).
func loadStories(t testing.TB, opt Options) *Model {
	t.Helper()
	ck, err := loader.Open(shared.Path(t, "models", "stories260K", "stories260K.bin"), loader.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { ck.Close() })
	m, err := Load(ck, cpu.New(cpu.Options{}), opt)
	require.NoError(t, err)
	return m
}

// TestDecodeStepMatchesForward: the decode step over a DecodeIO's fixed buffers (what a
// decode graph captures) gives, row for row, bit for bit, the logits Forward gives for the same
// one-token sequences, writes the same K/V, and leaves idle rows out of the cache.
func TestDecodeStepMatchesForward(t *testing.T) {
	for _, w := range []WeightType{WeightsF32, WeightsInt8} {
		t.Run(w.String(), func(t *testing.T) {
			m := loadStories(t, Options{Weights: w})
			V := m.Config.VocabSize
			const bs, rows, maxCtx = 16, 7, 200
			kvA, err := m.NewKVCache(160, bs)
			require.NoError(t, err)
			kvB, err := m.NewKVCache(160, bs)
			require.NoError(t, err)
			wsA, err := m.NewWorkspace(256, 8)
			require.NoError(t, err)
			wsB, err := m.NewWorkspace(256, 8)
			require.NoError(t, err)

			// Five sequences with histories of different lengths (one crossing a block
			// boundary at its decode position), prefilled into both caches through
			// shuffled block tables; rows 5 and 6 of the bucket stay idle.
			rng := rand.New(rand.NewPCG(3, 4))
			perm := rng.Perm(160)
			lens := []int{1, 15, 16, 37, 150}
			var seqs []Seq
			next := 0
			for _, n := range lens {
				var blocks []int32
				for range (n + bs) / bs {
					blocks = append(blocks, int32(perm[next]))
					next++
				}
				toks := make([]int32, n)
				for j := range toks {
					toks[j] = int32(1 + rng.IntN(V-1))
				}
				seqs = append(seqs, Seq{Tokens: toks, Blocks: blocks})
			}
			for _, c := range []struct {
				ws *Workspace
				kv *backend.KVCache
			}{{wsA, kvA}, {wsB, kvB}} {
				for _, s := range seqs {
					for p := 0; p < len(s.Tokens); p += 64 {
						_, err := m.Forward(c.ws, c.kv, []Seq{{Tokens: s.Tokens[p:min(p+64, len(s.Tokens))], Pos: p, Blocks: s.Blocks}})
						require.NoError(t, err)
					}
				}
			}

			// Reference: one eager pass of the five decode tokens.
			var dec []Seq
			ids, pos := make([]int32, rows), make([]int32, rows)
			io, err := m.NewDecodeIO(wsB, kvB, rows, maxCtx)
			require.NoError(t, err)
			tables := make([]int32, rows*io.MaxBlocks)
			for i := range pos {
				pos[i] = -1
			}
			for i, s := range seqs {
				tok := int32(1 + rng.IntN(V-1))
				dec = append(dec, Seq{Tokens: []int32{tok}, Pos: len(s.Tokens), Blocks: s.Blocks, Logits: LogitsLast})
				ids[i], pos[i] = tok, int32(len(s.Tokens))
				copy(tables[i*io.MaxBlocks:], s.Blocks)
			}
			ids[5] = 3 // an idle row computes garbage that goes nowhere
			want, err := m.Forward(wsA, kvA, dec)
			require.NoError(t, err)
			want = append([]float32(nil), want...)

			require.NoError(t, m.be.Upload(io.IDs, backend.Bytes(ids), backend.I32))
			require.NoError(t, m.be.Upload(io.Pos, backend.Bytes(pos), backend.I32))
			require.NoError(t, m.be.Upload(io.Tables, backend.Bytes(tables), backend.I32))
			require.NoError(t, m.DecodeStep(wsB, kvB, io, maxCtx))
			got := make([]float32, rows*V)
			require.NoError(t, m.be.Download(backend.Bytes(got), backend.F32, io.Logits))
			require.Equal(t, want, got[:len(seqs)*V], "active rows")
			for i := len(seqs) * V; i < rows*V; i++ {
				require.False(t, got[i] != got[i], "idle row logit %d is NaN", i) // computed, finite, unused
			}

			// Both caches now hold the same K/V everywhere: idle rows wrote nothing.
			for l := range m.Config.Layers {
				for _, pair := range [][2]backend.Tensor{{kvA.K[l], kvB.K[l]}, {kvA.V[l], kvB.V[l]}} {
					a := make([]float32, pair[0].Len())
					b := make([]float32, pair[1].Len())
					require.NoError(t, m.be.Download(backend.Bytes(a), backend.F32, pair[0]))
					require.NoError(t, m.be.Download(backend.Bytes(b), backend.F32, pair[1]))
					require.Equal(t, a, b, "layer %d cache", l)
				}
			}
		})
	}
}

func TestDecodeIOAndCaptureErrors(t *testing.T) {
	m := loadStories(t, Options{})
	kv, err := m.NewKVCache(8, 16)
	require.NoError(t, err)
	ws, err := m.NewWorkspace(4, 2)
	require.NoError(t, err)
	_, err = m.NewDecodeIO(ws, kv, 3, 64)
	require.ErrorContains(t, err, "3 rows for a workspace of 4 tokens and 2 logit rows")
	_, err = m.NewDecodeIO(ws, kv, 2, m.Config.MaxSeqLen+1)
	require.ErrorContains(t, err, "outside the model's")
	_, err = m.CaptureDecode(ws, kv, 2, 64)
	require.ErrorContains(t, err, "the cpu backend does not capture graphs")
}
