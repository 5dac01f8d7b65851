package lora

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/vireo-ai/vireo/runtime/loader"
)

// ggufTensor matches llama.cpp's adapter tensor names: blk.N.attn_q.weight.lora_a.
var ggufTensor = regexp.MustCompile(`^blk\.(\d+)\.([a-z_]+)\.weight\.lora_([ab])$`)

// loadGGUF reads a llama.cpp GGUF adapter.
func loadGGUF(src Source, path string, c *loader.Config, maxRank int) (*Adapter, error) {
	f, err := src.open(path)
	if err != nil {
		return nil, err
	}
	g, err := loader.OpenGGUFFile(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	defer g.Close()
	typ, _ := g.String("general.type")
	switch typ {
	case "adapter":
	case "":
		return nil, fmt.Errorf("%s: %w: a GGUF file without general.type = adapter (a model? give it as the base model instead)", path, ErrNotAdapter)
	default:
		return nil, fmt.Errorf("%s: %w: a GGUF file of general.type = %s (want adapter)", path, ErrNotAdapter, clip(typ))
	}
	if at, _ := g.String("adapter.type"); at != "lora" {
		return nil, fmt.Errorf("%s: adapter.type %q is not supported (only lora)", path, clip(at))
	}
	if arch, ok := g.String("general.architecture"); !ok {
		return nil, fmt.Errorf("%s: no general.architecture", path)
	} else if c.Arch != "" && arch != c.Arch {
		return nil, fmt.Errorf("%s: an adapter for architecture %s, but the base model is %s", path, clip(arch), c.Arch)
	}
	alpha := 0.0
	if v, ok := g.Metadata["adapter.lora.alpha"]; ok {
		f, isFloat := g.Float("adapter.lora.alpha")
		if !isFloat {
			return nil, fmt.Errorf("%s: adapter.lora.alpha is %T, want a float", path, v)
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%s: adapter.lora.alpha %v is not finite", path, f)
		}
		alpha = f
	}
	for _, k := range g.Keys {
		if strings.HasPrefix(k, "adapter.alora.") {
			return nil, fmt.Errorf("%s: %s: activated LoRA (aLoRA) is not supported", path, k)
		}
	}
	a := &Adapter{Path: path, Format: "gguf", Alpha: alpha}
	pairs := map[[2]int]*pair{}
	for _, t := range g.Tensors {
		m := ggufTensor.FindStringSubmatch(t.Name)
		if m == nil {
			return nil, fmt.Errorf("%s: tensor %q is not a LoRA matrix of a layer Vireo knows (want blk.N.{%s}.weight.lora_a|lora_b)", path, clip(t.Name), strings.Join(ggufNames[:], ","))
		}
		layer, err := strconv.Atoi(m[1])
		if err != nil || layer > 1<<20 {
			return nil, fmt.Errorf("%s: tensor %q: bad layer number", path, clip(t.Name))
		}
		tgt := Target(-1)
		for i, n := range ggufNames {
			if n == m[2] {
				tgt = Target(i)
			}
		}
		if tgt < 0 {
			return nil, fmt.Errorf("%s: tensor %q adapts %s, which Vireo cannot adapt (only %s)", path, clip(t.Name), m[2], strings.Join(ggufNames[:], ", "))
		}
		key := [2]int{layer, int(tgt)}
		p := pairs[key]
		if p == nil {
			p = &pair{}
			pairs[key] = p
		}
		if m[3] == "a" {
			if p.a != nil {
				return nil, fmt.Errorf("%s: tensor %q appears twice", path, clip(t.Name))
			}
			p.a, p.aName = t, t.Name
		} else {
			if p.b != nil {
				return nil, fmt.Errorf("%s: tensor %q appears twice", path, clip(t.Name))
			}
			p.b, p.bName = t, t.Name
		}
	}
	// llama.cpp scales by alpha/rank, or 1 when alpha is 0.
	for _, p := range pairs {
		p.scale = 1
		if alpha != 0 && p.a != nil && len(p.a.Shape) == 2 && p.a.Shape[0] > 0 {
			p.scale = alpha / float64(p.a.Shape[0])
		}
	}
	if err := assemble(a, pairs, c, maxRank, false, c.RopeStyle == loader.RopeRotateHalf); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}
