package cuda

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/backendtest"
	"github.com/vireo-ai/vireo/runtime/backend/cuda/kmodel"
	"github.com/vireo-ai/vireo/runtime/sampling"
)

// sampleRow is one row of TestSampler: logits drawn by kind, and the parameters.
type sampleRow struct {
	kind  string // "flat": uniform(-1, 1); "peaked": a few large logits; "ties": 5 distinct values; "bad": NaN, ±Inf among flat ones
	p     sampling.Params
	index uint64
	hist  []int32 // ids inside the vocabulary
}

// samplerCase is TestSampler's batch for a logits dtype and vocabulary: its rows and
// their logits [rows][ld] (ld = vocab+8, the padding NaN), before rounding to dt.
func samplerCase(dt backend.DType, vocab int) (rows []sampleRow, host []float32, ld int) {
	r := rand.New(rand.NewSource(int64(vocab)*7 + int64(dt)))
	P := func(temp, topP, minP float32, topK int) sampling.Params {
		return sampling.Params{Temperature: temp, TopP: topP, MinP: minP, TopK: topK, RepetitionPenalty: 1, Seed: uint64(r.Int63())}
	}
	rows = []sampleRow{
		{kind: "flat", p: P(1, 0.9, 0, 0), index: 3},
		{kind: "flat", p: P(1, 1, 0, 0), index: 17},
		{kind: "flat", p: P(0.7, 0.95, 0, 50), index: 1},
		{kind: "peaked", p: P(0, 1, 0, 0)},
		{kind: "peaked", p: P(1.3, 0.8, 0.05, 0), index: 9},
		{kind: "ties", p: P(1, 0.9, 0, 0), index: 5},
		{kind: "ties", p: P(0.5, 1, 0, vocab+5), index: 2},
		{kind: "bad", p: P(1, 0.97, 0, 0), index: 11},
		{kind: "flat", p: P(0.9, 0.9, 0, 0), index: 4},
	}
	rows[8].p.RepetitionPenalty, rows[8].p.PresencePenalty, rows[8].p.FrequencyPenalty = 1.3, 0.2, 0.1
	for _, id := range []int32{0, 5, 5, int32(vocab - 1), 17} {
		if id >= 0 && int(id) < vocab {
			rows[8].hist = append(rows[8].hist, id)
		}
	}
	R := len(rows)
	ld = vocab + 8
	host = make([]float32, R*ld)
	for i, row := range rows {
		lg := host[i*ld : (i+1)*ld]
		for j := range lg {
			switch {
			case j >= vocab:
				lg[j] = float32(math.NaN()) // the padding: never read
			case row.kind == "peaked":
				lg[j] = r.Float32()*2 - 1
				if r.Intn(200) == 0 {
					lg[j] += 12
				}
			case row.kind == "ties":
				lg[j] = float32(r.Intn(5)) * 0.75
			default:
				lg[j] = r.Float32()*2 - 1
			}
		}
		if row.kind == "bad" && vocab > 4 {
			lg[r.Intn(vocab)] = float32(math.NaN())
			lg[r.Intn(vocab)] = float32(math.Inf(-1))
			lg[r.Intn(vocab)] = float32(math.Inf(1))
		}
	}
	return rows, host, ld
}

// samplerDTypes and samplerVocabs are TestSampler's shapes.
var (
	samplerDTypes = []backend.DType{backend.F16, backend.BF16, backend.F32}
	samplerVocabs = []int{1, 1003, 32001, 128256}
)

// TestSamplerModel runs the model of vireo_sample2 (kmodel.Sample2) on TestSampler's
// rows with the configuration the backend picks on an H200 (132 SMs), and requires
// runtime/sampling's token on every row; it also requires that those rows reach every
// pass of the kernel (penalties, the id select among tied logits, the final scan) and
// both load paths, on one chunk and on many. It needs no GPU: what it passes fails on
// the card only where the kernel differs from its model.
func TestSamplerModel(t *testing.T) {
	reached := map[string]bool{}
	var ref sampling.Sampler
	dts, vocabs := samplerDTypes, samplerVocabs
	if raceOn { // one dtype, one vocabulary of one chunk and one of many (-race finds nothing here)
		dts, vocabs = dts[:1], []int{1003, 128256}
	}
	for _, dt := range dts {
		for _, vocab := range vocabs {
			rows, host, ld := samplerCase(dt, vocab)
			for i := range host {
				host[i] = backendtest.Round(dt, host[i])
			}
			cfg := kmodel.Sample2Choose(len(rows), vocab, 132) // Backend.sample2Config on an H200 (TestParseKernels)
			if cfg.Chunks(vocab) > 1 {
				reached["several chunks"] = true
			} else {
				reached["one chunk"] = true
			}
			m := &kmodel.Sample2{Cfg: cfg, Vocab: vocab, ElemBytes: dt.Size(), Aligned: ld*dt.Size()%16 == 0,
				Visit: func(pass string, row, block, thread, i int, path kmodel.Sample2Path) {
					reached["pass "+pass] = true
					reached[fmt.Sprintf("%s path %d", pass, path)] = true
				}}
			for i, row := range rows {
				want := ref.Sample(host[i*ld:i*ld+vocab], &row.p, row.index, row.hist)
				got := m.Row(i, host[i*ld:i*ld+vocab], &row.p, row.index, row.hist)
				if got != want {
					t.Errorf("%s vocab %d row %d (%s, %+v): model token %d, want %d", dt, vocab, i, row.kind, row.p, got, want)
				}
			}
		}
	}
	for _, k := range []string{"one chunk", "several chunks", "pass K0", "pass K1", "pass K2", "pass I", "pass F",
		fmt.Sprintf("K1 path %d", kmodel.PathVector), fmt.Sprintf("K1 path %d", kmodel.PathScalar)} {
		if !reached[k] {
			t.Errorf("TestSampler's rows do not reach %q (reached %v)", k, reached)
		}
	}
}
