package backend

// LoRAStack holds the low-rank adapters (LoRA) of one linear layer [Out][In] for up to
// Slots adapters at once, in tensors of the backend (S-LoRA's unified pool, Punica's
// stacked weights): row i of a pass adds scale·B·A·x[i] of the adapter in the slot its
// index names. Ranks differ per slot and per layer; a slot's matrices are zero-padded
// to MaxRank rows.
type LoRAStack struct {
	Slots, MaxRank, Out, In int
	// A [Slots·MaxRank][In] in the activation type: slot s's A (rank r) in rows
	// s·MaxRank … s·MaxRank+r-1.
	A Tensor
	// B [Slots·MaxRank][Out] in the activation type: slot s's B transposed with the
	// adapter's scale folded in — row s·MaxRank+k holds scale·B[:, k] — so the expand
	// step reads whole rows (a device's threads, consecutive outputs).
	B Tensor
	// Ranks [1][Slots] i32: slot s's rank in this layer; 0 (or anything outside
	// [1, MaxRank]) leaves rows of that slot alone.
	Ranks Tensor
}

// Check validates the stack's shapes and types against an activation type.
func (st *LoRAStack) Check(op string, act DType) error {
	switch {
	case st.Slots <= 0 || st.MaxRank <= 0 || st.Out <= 0 || st.In <= 0:
		return ShapeError(op, "stack of %d slots, rank %d, [%d][%d]", st.Slots, st.MaxRank, st.Out, st.In)
	case st.A.DType != act || st.A.Rows != st.Slots*st.MaxRank || st.A.Cols != st.In:
		return ShapeError(op, "A %s for %d slots of rank %d over %d inputs (%s)", st.A, st.Slots, st.MaxRank, st.In, act)
	case st.B.DType != act || st.B.Rows != st.Slots*st.MaxRank || st.B.Cols != st.Out:
		return ShapeError(op, "B %s for %d slots of rank %d over %d outputs (%s)", st.B, st.Slots, st.MaxRank, st.Out, act)
	case st.Ranks.DType != I32 || st.Ranks.Rows != 1 || st.Ranks.Cols != st.Slots:
		return ShapeError(op, "ranks %s for %d slots", st.Ranks, st.Slots)
	}
	return nil
}

// LoRAer is a backend that applies low-rank adapters per row: gathered BGMV/SGMV
// products, as in Punica and S-LoRA, so requests for different adapters and for the
// base model share one pass.
type LoRAer interface {
	// LoRA adds each row's adapter product to out: for row i whose slot s = slots[i] is
	// in [0, st.Slots) and whose rank r = Ranks[s] is in [1, MaxRank],
	//
	//	t[k] = Σ_c A[s·MaxRank+k][c]·x[i][c]              (shrink, k < r)
	//	out[i][j] += Σ_{k<r} t[k]·B[s·MaxRank+k][j]        (expand)
	//
	// Other rows of out (the base model's, slot -1; idle or out-of-range slots) are
	// left as they are. x [n][In], out [n][Out] in the activation type; slots [1][n]
	// i32. Each row's result depends on that row alone (batch-invariant on the CPU).
	LoRA(s Stream, out, x Tensor, st *LoRAStack, slots Tensor) error
}

// LoRAShapes checks the operands of a LoRA call.
func LoRAShapes(out, x Tensor, st *LoRAStack, slots Tensor, act DType) error {
	if err := st.Check("lora", act); err != nil {
		return err
	}
	n := x.Rows
	switch {
	case x.DType != act || x.Cols != st.In:
		return ShapeError("lora", "x %s for %d inputs (%s)", x, st.In, act)
	case out.DType != act || out.Rows != n || out.Cols != st.Out:
		return ShapeError("lora", "out %s for %d rows of %d outputs (%s)", out, n, st.Out, act)
	case slots.DType != I32 || slots.Rows != 1 || slots.Cols != n:
		return ShapeError("lora", "slots %s for %d rows", slots, n)
	}
	return nil
}

// LoRAGate is an optional ability of a LoRAer whose LoRA op can be switched off (the
// CUDA backend's kernels, until a GPU run verifies them): LoRAReady says why adapters
// cannot run now, or nil. A backend without it runs its LoRA op whenever asked.
type LoRAGate interface {
	LoRAReady() error
}
