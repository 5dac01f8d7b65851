package model

import (
	"fmt"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/lora"
)

// LoRASet is the device side of an adapter pool: for every layer and adapted target
// (q, k, v, o, gate, up, down) a backend.LoRAStack of Slots adapter slots of rank up to
// MaxRank, in the backend's activation type. LoadLoRA fills a slot from a host
// adapter; a pass on a workspace the set is attached to (Workspace.SetLoRA) applies,
// to each sequence that names a slot (Seq.LoRA), that slot's adapter beside the base
// weights (see Forward).
type LoRASet struct {
	Slots, MaxRank int
	stacks         [][lora.NumTargets]backend.LoRAStack // [layer][target]
	ranks          []int32                              // host copy of every stack's Ranks: [layer][target][slot]
	ranksT         backend.Tensor                       // [1][layers·targets·slots] i32; the stacks' Ranks are views
	adapters       []*lora.Adapter                      // the adapter in each slot (nil: empty)
	owner          *Model                               // the model it was made for
}

// LoRABytes is the device memory of a set of slots adapter slots of rank maxRank for
// configuration c, in an activation type of actBytes bytes per value.
func LoRABytes(c *Config, slots, maxRank, actBytes int) int64 {
	var per int64
	for t := lora.Target(0); t < lora.NumTargets; t++ {
		out, in := lora.Shape(c, t)
		per += int64(maxRank) * int64(out+in)
	}
	return per * int64(c.Layers) * int64(slots) * int64(actBytes)
}

// NewLoRASet allocates a set of slots adapter slots of rank up to maxRank for the
// model, every slot empty. The backend must apply adapters (backend.LoRAer).
func (m *Model) NewLoRASet(slots, maxRank int) (*LoRASet, error) {
	if _, ok := m.be.(backend.LoRAer); !ok {
		return nil, fmt.Errorf("lora: the %s backend does not run LoRA adapters", m.be.Name())
	}
	if g, ok := m.be.(backend.LoRAGate); ok {
		if err := g.LoRAReady(); err != nil {
			return nil, fmt.Errorf("lora: %w", err)
		}
	}
	if slots <= 0 || maxRank <= 0 {
		return nil, fmt.Errorf("lora: need positive slots and rank, got %d and %d", slots, maxRank)
	}
	c := &m.Config
	set := &LoRASet{Slots: slots, MaxRank: maxRank, stacks: make([][lora.NumTargets]backend.LoRAStack, c.Layers),
		ranks: make([]int32, c.Layers*int(lora.NumTargets)*slots), adapters: make([]*lora.Adapter, slots), owner: m}
	var err error
	if set.ranksT, err = m.be.Alloc(backend.I32, 1, len(set.ranks)); err != nil {
		return nil, fmt.Errorf("lora: %w", err)
	}
	if err := m.be.Upload(set.ranksT, backend.Bytes(set.ranks), backend.I32); err != nil {
		return nil, fmt.Errorf("lora: %w", err)
	}
	act := m.be.Activations()
	for l := range set.stacks {
		for t := lora.Target(0); t < lora.NumTargets; t++ {
			out, in := lora.Shape(c, t)
			st := &set.stacks[l][t]
			*st = backend.LoRAStack{Slots: slots, MaxRank: maxRank, Out: out, In: in,
				Ranks: set.ranksT.View(set.rankIndex(l, t, 0), 1, slots)}
			if st.A, err = m.be.Alloc(act, slots*maxRank, in); err != nil {
				return nil, fmt.Errorf("lora: layer %d %s: %w", l, t, err)
			}
			if st.B, err = m.be.Alloc(act, slots*maxRank, out); err != nil {
				return nil, fmt.Errorf("lora: layer %d %s: %w", l, t, err)
			}
		}
	}
	return set, nil
}

func (set *LoRASet) rankIndex(layer int, t lora.Target, slot int) int {
	return (layer*int(lora.NumTargets)+int(t))*set.Slots + slot
}

// Adapter is the adapter loaded in slot (nil when empty).
func (set *LoRASet) Adapter(slot int) *lora.Adapter { return set.adapters[slot] }

// LoadLoRA writes adapter a into slot of set, replacing what it held: each module's A
// rows and scale·Bᵀ rows, and its rank (every layer and target the adapter leaves
// alone gets rank 0). Work still queued on the device that reads the slot must have
// completed (the caller's fences): the copies are not ordered after it.
func (m *Model) LoadLoRA(set *LoRASet, slot int, a *lora.Adapter) error {
	c := &m.Config
	switch {
	case set.owner != m:
		return fmt.Errorf("lora: a set made for another model")
	case slot < 0 || slot >= set.Slots:
		return fmt.Errorf("lora: slot %d outside [0, %d)", slot, set.Slots)
	case a.Rank > set.MaxRank:
		return fmt.Errorf("lora: %s has rank %d, above the slots' %d", a.Path, a.Rank, set.MaxRank)
	}
	// Empty the slot first: a failure below leaves it empty, never half-written.
	for l := 0; l < c.Layers; l++ {
		for t := lora.Target(0); t < lora.NumTargets; t++ {
			set.ranks[set.rankIndex(l, t, slot)] = 0
		}
	}
	set.adapters[slot] = nil
	if err := m.be.Upload(set.ranksT, backend.Bytes(set.ranks), backend.I32); err != nil {
		return fmt.Errorf("lora: clearing slot %d: %w", slot, err)
	}
	for i := range a.Modules {
		md := &a.Modules[i]
		if md.Layer >= c.Layers {
			return fmt.Errorf("lora: %s: layer %d of %d", a.Path, md.Layer, c.Layers)
		}
		st := &set.stacks[md.Layer][md.Target]
		if md.Out != st.Out || md.In != st.In || len(md.A) != md.Rank*md.In || len(md.B) != md.Out*md.Rank {
			return fmt.Errorf("lora: %s: layer %d %s is [%d][%d] rank %d, the model's [%d][%d]", a.Path, md.Layer, md.Target, md.Out, md.In, md.Rank, st.Out, st.In)
		}
		if err := m.be.Upload(st.A.View(slot*set.MaxRank*st.In, md.Rank, st.In), backend.Bytes(md.A), backend.F32); err != nil {
			return fmt.Errorf("lora: layer %d %s: %w", md.Layer, md.Target, err)
		}
		bt := make([]float32, md.Rank*md.Out) // scale·Bᵀ
		for j := 0; j < md.Out; j++ {
			for k := 0; k < md.Rank; k++ {
				bt[k*md.Out+j] = md.Scale * md.B[j*md.Rank+k]
			}
		}
		if err := m.be.Upload(st.B.View(slot*set.MaxRank*st.Out, md.Rank, st.Out), backend.Bytes(bt), backend.F32); err != nil {
			return fmt.Errorf("lora: layer %d %s: %w", md.Layer, md.Target, err)
		}
	}
	for i := range a.Modules {
		md := &a.Modules[i]
		set.ranks[set.rankIndex(md.Layer, md.Target, slot)] = int32(md.Rank)
	}
	if err := m.be.Upload(set.ranksT, backend.Bytes(set.ranks), backend.I32); err != nil {
		return fmt.Errorf("lora: slot %d ranks: %w", slot, err)
	}
	set.adapters[slot] = a
	return nil
}

// SetLoRA attaches set (made by the workspace's model) to the workspace: passes on it
// apply the set's slots to the sequences that name one (Seq.LoRA). nil detaches it.
// Each engine's workspaces carry its own set, so engines sharing a model do not share
// adapters.
func (w *Workspace) SetLoRA(set *LoRASet) { w.lora = set }

// LoRA is the workspace's set (nil: none).
func (w *Workspace) LoRA() *LoRASet { return w.lora }
