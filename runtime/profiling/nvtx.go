package profiling

import (
	"fmt"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/model"
)

// Range colors (0xRRGGBB), so a timeline tells the kinds apart at a glance.
const (
	colorPass   = 0x4c72b0 // steps: blue
	colorReplay = 0x8172b3 // graph replays: purple
	colorLayer  = 0x8c8c8c // layers: grey
	colorMatMul = 0xdd8452 // projections and the classifier: orange
	colorAttn   = 0xc44e52 // attention and the KV write: red
	colorOther  = 0x55a868 // norms, RoPE, SiLU, embedding, gather: green
)

// ranges opens a lane's NVTX ranges through a backend.Ranger. A range name that cannot
// be registered turns the lane's later ranges off; pops stay balanced with the pushes
// that happened.
type ranges struct {
	r      backend.Ranger
	off    bool
	stack  []bool // per open range: whether it was pushed
	layers []int
	ops    [model.NumOps]int
	passes map[passRange]int
}

type passRange struct {
	phase  model.Phase
	replay bool
	bucket string
}

func newRanges(r backend.Ranger, layers int) *ranges {
	g := &ranges{r: r, layers: make([]int, layers), passes: map[passRange]int{}}
	for i := range g.layers {
		g.layers[i] = g.id(fmt.Sprintf("layer %d", i), colorLayer)
	}
	for op := model.Op(0); op < model.NumOps; op++ {
		c := colorOther
		switch op {
		case model.OpQ, model.OpK, model.OpV, model.OpAttnOutput, model.OpFFNGate, model.OpFFNUp, model.OpFFNDown, model.OpClassifier:
			c = colorMatMul
		case model.OpAttention, model.OpWriteKV:
			c = colorAttn
		}
		g.ops[op] = g.id(op.String(), uint32(c))
	}
	return g
}

// id registers name, or turns the ranges off when it cannot.
func (g *ranges) id(name string, color uint32) int {
	if g.off {
		return -1
	}
	id, err := g.r.RangeID(name, color)
	if err != nil {
		g.off = true
		return -1
	}
	return id
}

func (g *ranges) push(id int) {
	real := !g.off && id >= 0
	if real {
		g.r.PushRange(id)
	}
	g.stack = append(g.stack, real)
}

func (g *ranges) pop() {
	n := len(g.stack)
	if n == 0 {
		return
	}
	real := g.stack[n-1]
	g.stack = g.stack[:n-1]
	if real {
		g.r.PopRange()
	}
}

func (g *ranges) pass(ph model.Phase, bucket string) {
	k := passRange{phase: ph, bucket: bucket}
	id, ok := g.passes[k]
	if !ok {
		id = g.id(fmt.Sprintf("%s step · %s", ph, bucket), colorPass)
		g.passes[k] = id
	}
	g.push(id)
}

func (g *ranges) replay(bucket string) {
	k := passRange{replay: true, bucket: bucket}
	id, ok := g.passes[k]
	if !ok {
		id = g.id("graph replay · "+bucket, colorReplay)
		g.passes[k] = id
	}
	g.push(id)
}

func (g *ranges) layer(l int) {
	id := -1
	if l >= 0 && l < len(g.layers) {
		id = g.layers[l]
	}
	g.push(id)
}

func (g *ranges) op(op model.Op) {
	id := -1
	if op < model.NumOps {
		id = g.ops[op]
	}
	g.push(id)
}
