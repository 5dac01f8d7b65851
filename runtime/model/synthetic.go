package model

import (
	"fmt"
	"math"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/loader"
)

// SyntheticPrefix names generated models: "synthetic:<shape>".
const SyntheticPrefix = "synthetic:"

// syntheticShapes are real model shapes with random weights, for benchmarks and for a
// machine that has no model file. "tiny" is the default model.
var syntheticShapes = map[string]Config{
	"tiny": {Arch: "llama", Dim: 256, HiddenDim: 768, Layers: 4, Heads: 8, KVHeads: 4, HeadDim: 32,
		VocabSize: 259, MaxSeqLen: 2048, RopeTheta: 10000, NormEps: 1e-5, TiedEmbeddings: true},
	"tinyllama-1.1b": {Arch: "llama", Dim: 2048, HiddenDim: 5632, Layers: 22, Heads: 32, KVHeads: 4, HeadDim: 64,
		VocabSize: 32000, MaxSeqLen: 2048, RopeTheta: 10000, NormEps: 1e-5},
	"llama3-8b": {Arch: "llama", Dim: 4096, HiddenDim: 14336, Layers: 32, Heads: 32, KVHeads: 8, HeadDim: 128,
		VocabSize: 128256, MaxSeqLen: 8192, RopeTheta: 500000, NormEps: 1e-5},
}

// SyntheticNames lists the shapes Synthetic knows.
func SyntheticNames() []string {
	var s []string
	for k := range syntheticShapes {
		s = append(s, SyntheticPrefix+k)
	}
	sort.Strings(s)
	return s
}

// IsSynthetic reports whether a model path names a synthetic model.
func IsSynthetic(path string) bool { return strings.HasPrefix(path, SyntheticPrefix) }

// SyntheticConfig returns the configuration of a named synthetic shape.
func SyntheticConfig(name string) (Config, error) {
	c, ok := syntheticShapes[strings.TrimPrefix(name, SyntheticPrefix)]
	if !ok {
		return Config{}, fmt.Errorf("unknown synthetic model %q (known: %s)", name, strings.Join(SyntheticNames(), ", "))
	}
	return c, nil
}

// Synthetic builds a model of a named shape with random weights from a fixed seed,
// generated in memory (never a file); tokenizer.SyntheticVocab is its vocabulary.
// Int8 weights are drawn as int8 directly, so an 8B shape fits in memory.
func Synthetic(name string, be backend.Backend, opt Options) (*Model, error) {
	c, err := SyntheticConfig(name)
	if err != nil {
		return nil, err
	}
	if err := Validate(&c); err != nil {
		return nil, err
	}
	m := &Model{Config: c, Options: opt, be: be, rope: RoPEOf(&c)}
	b := &builder{be: be, opt: opt}
	prog := &progress{fn: opt.Progress, total: matrixWeights(&c)}
	int8 := opt.Weights == WeightsInt8 || opt.Weights == WeightsQ8_0 // WeightsAuto: f32, a synthetic model's own precision
	seed := uint64(0x5eed)
	gen := func(name string, out, in int, q bool) (*backend.Weight, error) {
		seed++
		h := &backend.HostWeight{Name: name, Out: out, In: in}
		a := math.Sqrt(3 / float64(in)) // uniform(-a, a) has variance 1/in
		if q && opt.Weights == WeightsQ8_0 {
			// Q8_0 blocks of the f32 model's weights, as vireo quantize stores them.
			w, err := b.linear(name, out, in, randF32(seed, out*in, float32(a)), true, "")
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			prog.step(name, "generated", out*in)
			return w, nil
		}
		if q {
			h.I8, h.Scales = randInt8(seed, out, in), make([]float32, out)
			for i := range h.Scales {
				h.Scales[i] = float32(a / 127)
			}
		} else {
			// A device backend draws float weights itself (an 8B shape's 32 GB of f32
			// would take tens of seconds on one host thread); such weights are not fused.
			if rl, ok := be.(backend.RandomWeightLoader); ok {
				w, err := rl.LoadRandomWeight(h.Name, out, in, seed, float32(a))
				if err != nil {
					return nil, fmt.Errorf("%s: weight %s: %w", name, h.Name, err)
				}
				b.bytes += int64(4 * out * in)
				b.kept(w)
				prog.step(h.Name, "generated", out*in)
				return w, nil
			}
			h.F32 = randF32(seed, out*in, float32(a))
		}
		w, err := b.upload(h)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		prog.step(h.Name, "generated", out*in)
		return w, nil
	}
	ones := make([]float32, c.Dim)
	for i := range ones {
		ones[i] = 1
	}
	err = m.assemble(b, !c.TiedEmbeddings, func(name string, out, in int, emb bool) (*backend.Weight, error) {
		return gen(name, out, in, int8 && !(emb && opt.FloatEmbedding))
	}, func(name string, _ int) (backend.Tensor, error) { return b.vector(name, ones) })
	if err != nil {
		return nil, err
	}
	m.WeightBytes = b.bytes // less an untied embedding's: it is gathered, not streamed
	if !c.TiedEmbeddings {
		m.WeightBytes -= int64(c.VocabSize * c.Dim * m.embed.W.DType.Size())
	}
	m.weightTypes = b.typeSummary()
	return m, nil
}

// splitmix64 is the generator behind the synthetic weights: fast, and seeded per chunk
// so the values do not depend on how many goroutines made them.
func splitmix64(x *uint64) uint64 {
	*x += 0x9e3779b97f4a7c15
	z := *x
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

const randChunk = 1 << 16

func fillParallel(n int, fn func(lo, hi int)) {
	chunks := (n + randChunk - 1) / randChunk
	workers := min(runtime.GOMAXPROCS(0), chunks)
	var wg sync.WaitGroup
	var next sync.Mutex
	c := 0
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			for {
				next.Lock()
				i := c
				c++
				next.Unlock()
				if i >= chunks {
					return
				}
				fn(i*randChunk, min((i+1)*randChunk, n))
			}
		})
	}
	wg.Wait()
}

func randF32(seed uint64, n int, a float32) []float32 {
	out := make([]float32, n)
	fillParallel(n, func(lo, hi int) {
		s := seed*0x100000001b3 + uint64(lo)
		for i := lo; i < hi; i++ {
			u := float32(splitmix64(&s)>>40) / (1 << 24) // [0,1)
			out[i] = (2*u - 1) * a
		}
	})
	return out
}

func randInt8(seed uint64, rows, cols int) []int8 {
	n := rows * cols
	out := make([]int8, n)
	fillParallel(n, func(lo, hi int) {
		s := seed*0x100000001b3 + uint64(lo)
		i := lo
		for i < hi {
			r := splitmix64(&s)
			for k := 0; k < 8 && i < hi; k++ {
				out[i] = int8(int(uint8(r>>(8*k)))%255 - 127)
				i++
			}
		}
	})
	return out
}

// SyntheticWeights describes a named synthetic shape as a checkpoint: its configuration
// and a generator of each canonical tensor's float values (loader.Canonical names),
// exactly the weights Synthetic loads with f32 weights (norms are ones); its vocabulary
// is tokenizer.SyntheticVocab. Each call generates the tensor anew, so a large shape can
// be written one tensor at a time.
func SyntheticWeights(name string) (Config, func(tensor string) ([]float32, error), error) {
	c, err := SyntheticConfig(name)
	if err != nil {
		return Config{}, nil, err
	}
	// Synthetic draws the matrices in this order, one seed each from 0x5eed+1.
	seeds := map[string]uint64{"token_embd.weight": 0x5eed + 1}
	next := uint64(0x5eed + 2)
	for l := 0; l < c.Layers; l++ {
		for _, s := range []string{"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"} {
			seeds[fmt.Sprintf("blk.%d.%s.weight", l, s)] = next
			next++
		}
	}
	if !c.TiedEmbeddings {
		seeds["output.weight"] = next
	}
	_, shapes := loader.Canonical(c)
	gen := func(tensor string) ([]float32, error) {
		shape, ok := shapes[tensor]
		if !ok {
			return nil, fmt.Errorf("%s has no tensor %q", name, tensor)
		}
		if len(shape) == 1 {
			ones := make([]float32, shape[0])
			for i := range ones {
				ones[i] = 1
			}
			return ones, nil
		}
		out, in := shape[0], shape[1]
		return randF32(seeds[tensor], out*in, float32(math.Sqrt(3/float64(in)))), nil
	}
	return c, gen, nil
}
