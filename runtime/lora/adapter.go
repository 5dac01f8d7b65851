package lora

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"unsafe"

	"github.com/vireo-ai/vireo/runtime/loader"
)

// Target is a linear layer of a transformer block that an adapter may modify.
type Target int

const (
	TargetQ    Target = iota // attention query, [heads·headDim][dim]
	TargetK                  // attention key, [kvHeads·headDim][dim]
	TargetV                  // attention value, [kvHeads·headDim][dim]
	TargetO                  // attention output, [dim][heads·headDim]
	TargetGate               // FFN gate (w1), [hidden][dim]
	TargetUp                 // FFN up (w3), [hidden][dim]
	TargetDown               // FFN down (w2), [dim][hidden]
	NumTargets
)

// peftNames and ggufNames name the targets in PEFT's module names and GGUF's tensor
// names.
var (
	peftNames = [NumTargets]string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
	ggufNames = [NumTargets]string{"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}
)

// String is the target's PEFT module name ("q_proj").
func (t Target) String() string {
	if t >= 0 && t < NumTargets {
		return peftNames[t]
	}
	return fmt.Sprintf("target(%d)", int(t))
}

// Shape is the [out][in] shape of target t in a model of configuration c.
func Shape(c *loader.Config, t Target) (out, in int) {
	qd, kd := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	switch t {
	case TargetQ:
		return qd, c.Dim
	case TargetK, TargetV:
		return kd, c.Dim
	case TargetO:
		return c.Dim, qd
	case TargetGate, TargetUp:
		return c.HiddenDim, c.Dim
	case TargetDown:
		return c.Dim, c.HiddenDim
	}
	return 0, 0
}

// Module is one adapted linear layer: W' = W + Scale·B·A.
type Module struct {
	Layer   int
	Target  Target
	Rank    int
	Out, In int
	Scale   float32
	A       []float32 // [Rank][In]
	B       []float32 // [Out][Rank], rows in the base's order
}

// Adapter is a loaded low-rank adapter, checked against a base configuration.
type Adapter struct {
	Path   string
	Format string  // "peft" or "gguf"
	Rank   int     // the largest module rank
	Alpha  float64 // lora_alpha, or adapter.lora.alpha
	RSLoRA bool    // scale alpha/√r (PEFT's use_rslora)
	// Modules, ordered by layer then target; at most one per (layer, target).
	Modules []Module
}

// Bytes is the host memory the adapter's matrices take.
func (a *Adapter) Bytes() int64 {
	var n int64
	for i := range a.Modules {
		n += int64(len(a.Modules[i].A)+len(a.Modules[i].B)) * 4
	}
	return n
}

// Targets lists the targets some module of the adapter modifies, in order.
func (a *Adapter) Targets() []Target {
	var seen [NumTargets]bool
	for i := range a.Modules {
		seen[a.Modules[i].Target] = true
	}
	var ts []Target
	for t, ok := range seen {
		if ok {
			ts = append(ts, Target(t))
		}
	}
	return ts
}

// Module returns the adapter's module for (layer, t), or nil.
func (a *Adapter) Module(layer int, t Target) *Module {
	i := sort.Search(len(a.Modules), func(i int) bool {
		m := &a.Modules[i]
		return m.Layer > layer || m.Layer == layer && m.Target >= t
	})
	if i < len(a.Modules) && a.Modules[i].Layer == layer && a.Modules[i].Target == t {
		return &a.Modules[i]
	}
	return nil
}

// Delta is the module's ΔW = Scale·B·A as [Out][In], summed in float64 (a reference
// for tests and merging).
func (m *Module) Delta() []float64 {
	d := make([]float64, m.Out*m.In)
	for o := 0; o < m.Out; o++ {
		for r := 0; r < m.Rank; r++ {
			b := float64(m.Scale) * float64(m.B[o*m.Rank+r])
			if b == 0 {
				continue
			}
			row, a := d[o*m.In:(o+1)*m.In], m.A[r*m.In:(r+1)*m.In]
			for k := range row {
				row[k] += b * float64(a[k])
			}
		}
	}
	return d
}

// Sum is a fingerprint of the adapter's arithmetic: every module's place, rank, scale
// and matrices (FNV-1a over their bits). Two loads of unchanged files have one sum.
func (a *Adapter) Sum() uint64 {
	h := fnv.New64a()
	var b [8]byte
	word := func(v uint64) {
		binary.LittleEndian.PutUint64(b[:], v)
		h.Write(b[:])
	}
	for i := range a.Modules {
		m := &a.Modules[i]
		word(uint64(m.Layer)<<32 | uint64(m.Target))
		word(uint64(m.Rank)<<32 | uint64(math.Float32bits(m.Scale)))
		for _, f := range [][]float32{m.A, m.B} {
			h.Write(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(f))), 4*len(f)))
		}
	}
	return h.Sum64()
}

// ErrNotAdapter marks a path that holds no adapter of a format Load reads.
var ErrNotAdapter = errors.New("not a LoRA adapter")

// Source is where an adapter's files are: Path, or, with Root, Path inside Root —
// every file is then opened through the root, so nothing outside it is read, whether
// named with ".." or reached through a symbolic link.
type Source struct {
	Path string
	Root *os.Root
}

func (s Source) stat(p string) (os.FileInfo, error) {
	if s.Root != nil {
		return s.Root.Stat(p)
	}
	return os.Stat(p)
}

func (s Source) open(p string) (*os.File, error) {
	if s.Root != nil {
		return s.Root.Open(p)
	}
	return os.Open(p)
}

// Load reads the adapter at path — a PEFT directory (or its adapter_config.json) or a
// GGUF adapter file — and checks it against the base configuration c and maxRank (0:
// no bound). Errors name the path and what is wrong.
func Load(path string, c *loader.Config, maxRank int) (*Adapter, error) {
	return LoadFrom(Source{Path: path}, c, maxRank)
}

// LoadFrom is Load of the adapter src names.
func LoadFrom(src Source, c *loader.Config, maxRank int) (*Adapter, error) {
	path := src.Path
	fi, err := src.stat(path)
	if err != nil {
		return nil, fmt.Errorf("lora: %w", err)
	}
	var a *Adapter
	switch {
	case fi.IsDir():
		a, err = loadPEFT(src, path, c, maxRank)
	case filepath.Base(path) == "adapter_config.json":
		a, err = loadPEFT(src, filepath.Dir(path), c, maxRank)
	case fi.Mode().IsRegular():
		a, err = loadFile(src, path, c, maxRank)
	default:
		err = fmt.Errorf("%s: %w: not a directory or a regular file", path, ErrNotAdapter)
	}
	if err != nil {
		return nil, fmt.Errorf("lora: %w", err)
	}
	return a, nil
}

// loadFile reads a single-file adapter: GGUF. Other files are refused, saying what
// they look like.
func loadFile(src Source, path string, c *loader.Config, maxRank int) (*Adapter, error) {
	f, err := src.open(path)
	if err != nil {
		return nil, err
	}
	var head [8]byte
	n, err := io.ReadFull(f, head[:])
	f.Close()
	if err != nil && n == 0 {
		return nil, fmt.Errorf("%s: %w: the file is empty", path, ErrNotAdapter)
	}
	switch {
	case bytes.HasPrefix(head[:n], []byte("GGUF")):
		return loadGGUF(src, path, c, maxRank)
	case filepath.Ext(path) == ".safetensors":
		return nil, fmt.Errorf("%s: %w: a bare safetensors file; a PEFT adapter is a directory holding adapter_config.json and adapter_model.safetensors", path, ErrNotAdapter)
	case filepath.Ext(path) == ".bin" || filepath.Ext(path) == ".pt" || filepath.Ext(path) == ".pth":
		return nil, fmt.Errorf("%s: %w: PyTorch pickles are not read; use a PEFT directory with adapter_model.safetensors or a GGUF adapter", path, ErrNotAdapter)
	}
	return nil, fmt.Errorf("%s: %w: neither a PEFT adapter directory nor a GGUF adapter file", path, ErrNotAdapter)
}

// pair collects a module's two matrices while reading a file.
type pair struct {
	a, b     *loader.Tensor
	aName    string
	bName    string
	scale    float64
	rankWant int // the rank the configuration declares (0: not checked)
}

// assemble checks the pairs against c and maxRank and builds the adapter's modules.
// key is (layer, target); names say which tensors each came from.
func assemble(a *Adapter, pairs map[[2]int]*pair, c *loader.Config, maxRank int, permuteFromRotateHalf, permuteToRotateHalf bool) error {
	keys := make([][2]int, 0, len(pairs))
	for k := range pairs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i][0] < keys[j][0] || keys[i][0] == keys[j][0] && keys[i][1] < keys[j][1]
	})
	if len(keys) == 0 {
		return errors.New("the adapter holds no LoRA matrices")
	}
	for _, k := range keys {
		p := pairs[k]
		layer, t := k[0], Target(k[1])
		switch {
		case p.a == nil:
			return fmt.Errorf("tensor %q has no matching A matrix", p.bName)
		case p.b == nil:
			return fmt.Errorf("tensor %q has no matching B matrix", p.aName)
		case layer >= c.Layers:
			return fmt.Errorf("tensor %q: layer %d, but the base model has %d layers", p.aName, layer, c.Layers)
		case len(p.a.Shape) != 2:
			return fmt.Errorf("tensor %q has shape %v, want a matrix [rank][in]", p.aName, p.a.Shape)
		case len(p.b.Shape) != 2:
			return fmt.Errorf("tensor %q has shape %v, want a matrix [out][rank]", p.bName, p.b.Shape)
		}
		out, in := Shape(c, t)
		r := p.a.Shape[0]
		switch {
		case r <= 0:
			return fmt.Errorf("tensor %q has rank 0", p.aName)
		case p.a.Shape[1] != in:
			return fmt.Errorf("tensor %q has shape %v, but %s of the base model takes %d inputs (want [%d][%d])", p.aName, p.a.Shape, t, in, r, in)
		case p.b.Shape[0] != out || p.b.Shape[1] != r:
			return fmt.Errorf("tensor %q has shape %v, want [%d][%d] (%s of the base model has %d outputs; A has rank %d)", p.bName, p.b.Shape, out, r, t, out, r)
		case maxRank > 0 && r > maxRank:
			return fmt.Errorf("tensor %q has rank %d, above the maximum LoRA rank %d (--max-lora-rank)", p.aName, r, maxRank)
		case p.rankWant > 0 && r != p.rankWant:
			return fmt.Errorf("tensor %q has rank %d, but adapter_config.json declares %d for it", p.aName, r, p.rankWant)
		}
		A, err := floats(p.a)
		if err != nil {
			return err
		}
		B, err := floats(p.b)
		if err != nil {
			return err
		}
		if t == TargetQ || t == TargetK {
			heads := c.Heads
			if t == TargetK {
				heads = c.KVHeads
			}
			switch {
			case permuteFromRotateHalf:
				B = loader.PairsFromRotateHalf(B, heads, c.HeadDim, r)
			case permuteToRotateHalf:
				B = rotateHalfFromPairs(B, heads, c.HeadDim, r)
			}
		}
		a.Modules = append(a.Modules, Module{Layer: layer, Target: t, Rank: r, Out: out, In: in, Scale: float32(p.scale), A: A, B: B})
		a.Rank = max(a.Rank, r)
	}
	return nil
}

// floats copies a tensor's values as float32, refusing NaN and infinities.
func floats(t *loader.Tensor) ([]float32, error) {
	f, err := t.Float32()
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	out := make([]float32, len(f))
	for i, v := range f {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("tensor %q holds %v at element %d", t.Name, v, i)
		}
		out[i] = v
	}
	return out, nil
}

// rotateHalfFromPairs is loader.PairsFromRotateHalf's inverse: rows in GGUF's
// adjacent-pairs order go back to HF's rotate-half order.
func rotateHalfFromPairs(w []float32, heads, headDim, in int) []float32 {
	out := make([]float32, len(w))
	for h := 0; h < heads; h++ {
		for i := 0; i < headDim/2; i++ {
			for j := 0; j < 2; j++ {
				src := (h*headDim + 2*i + j) * in
				dst := (h*headDim + j*headDim/2 + i) * in
				copy(out[dst:dst+in], w[src:src+in])
			}
		}
	}
	return out
}
