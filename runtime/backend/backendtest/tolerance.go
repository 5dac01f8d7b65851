package backendtest

import (
	"maps"

	"github.com/vireo-ai/vireo/runtime/backend"
)

// The ops the harness checks; Case.Op is one of these.
const (
	OpEmbed   = "embed"
	OpRMSNorm = "rmsnorm"
	// OpRMSNormQuant is backend.RMSNormQuanter's op: RMSNorm quantized per token to int8.
	OpRMSNormQuant = "rmsnorm_quant"
	OpMatMul       = "matmul"
	OpRoPE         = "rope"
	OpWriteKV      = "write_kv"
	OpAttention    = "attention"
	OpSiLUMul      = "silu_mul"
	OpGatherRows   = "gather_rows"
	OpLoRA         = "lora"
)

// Ops lists every op in the order cases are generated.
var Ops = []string{OpEmbed, OpRMSNorm, OpRMSNormQuant, OpMatMul, OpRoPE, OpWriteKV, OpAttention, OpSiLUMul, OpGatherRows, OpLoRA}

// Tol is an op's largest allowed normalized error nmse = mse(ref, b) / mse(ref, 0), by
// the precision class of a run: the least precise float dtype the backend under test
// used for any operand (activations as allocated, weights as loaded, the KV cache).
// Inputs are rounded to the backend's dtypes before the reference sees them, so a
// tolerance covers only what the backend computes differently, never input rounding.
//
// Rounding one value to f16 (unit roundoff u = 2⁻¹¹) has a mean squared relative error
// of about u²/3 ≈ 8e-8; to bf16 (u = 2⁻⁸) about 5e-6. The half tolerances sit about ten
// times above the roundings an op inherently does; the f32 ones sit far above summation
// order effects (an f32 dot product of 14336 terms in any order: below 1e-10).
type Tol struct {
	F32, F16, BF16 float64
}

// tolerances are fixed here and committed before a device run; a run never loosens them.
var tolerances = map[string]Tol{
	// Copies (a dequantizing copy for int8 tables: one exact multiply). Bit-exact in
	// f32; in half, one rounding of the output (an f32 table stored as bf16 included).
	OpEmbed:      {F32: 0, F16: 1e-6, BF16: 5e-5},
	OpGatherRows: {F32: 0, F16: 1e-6, BF16: 5e-5},
	OpWriteKV:    {F32: 0, F16: 1e-6, BF16: 5e-5},
	// Sum of squares in any order, rsqrt to a few ulp; half: the output rounding.
	OpRMSNorm: {F32: 1e-9, F16: 1e-6, BF16: 5e-5},
	// Compared as the int8 values (q, as numbers) and the row scales. A device rounds the
	// normalized row to its activation type before quantizing; the f32 reference does
	// not, so a value within that rounding of a half-step boundary lands one step away:
	// |Δq| ≤ |q|·u (u = 2⁻¹¹ for f16, 2⁻⁸ for bf16), about 2% of the values one step off
	// in f16 (nmse ≈ 1e-5 of the q values' mean square, ~2600 here) and 15–20% in bf16
	// (≈ 1e-4 at most). A row quantized with another row's scale, a shifted column or an
	// unwritten value gives nmse above 1e-2; f32 allows only a differently rounded rsqrt.
	// Measured on the half-precision stand-in (TestHalfPrecisionPath, which rounds the
	// row as a device does): f16 ≈ 1e-5, bf16 ≈ 5e-5.
	OpRMSNormQuant: {F32: 1e-7, F16: 1e-4, BF16: 5e-4},
	// exp/sigmoid to a few ulp (fast-math __expf included); half: the output rounding.
	OpSiLUMul: {F32: 1e-9, F16: 1e-6, BF16: 5e-5},
	// Angles p·θ computed in f32 rather than f64 at positions up to 8191 give an error
	// up to p·2⁻²⁴ rad in the fastest pairs (nmse about 1e-8 over a head); 1e-6 allows
	// that and a sin/cos of a few ulp, not a fast __sinf on large arguments or an
	// off-by-one position (nmse ≈ 0.1). Half: output rounding plus the same.
	OpRoPE: {F32: 1e-6, F16: 1e-5, BF16: 1e-4},
	// f32: any summation order, and TF32 or fp16 tensor-core products inside the op
	// (≈1e-7); f32 activations must not be quantized. Half: W8A8 prefill quantizes
	// activations per token to int8 (for the uniform [-1,1] inputs here nmse ≈ 2e-5)
	// plus the output rounding; 1e-4 still catches one wrong column of a 4096-wide
	// output (nmse ≈ 2/4096). The SiLU-GLU epilogue keeps gate and up in fp32 before
	// silu(gate)·up, which only removes roundings.
	OpMatMul: {F32: 1e-6, F16: 1e-4, BF16: 1e-4},
	// Online softmax in any block order, exp to a few ulp; half: probabilities rounded
	// to the MMA dtype for P·V and the output rounding.
	OpAttention: {F32: 1e-8, F16: 5e-6, BF16: 1e-4},
	// Two f32 dot products (shrink over In, expand over the rank) in any order, added to
	// out; half: the shrink's result kept in f32, one rounding of the output. A slot's
	// padding rows are NaN here, so reading one fails whatever the tolerance.
	OpLoRA: {F32: 1e-9, F16: 1e-6, BF16: 5e-5},
}

// Tolerance returns the nmse allowed for op when its least precise operand on the backend
// under test has dtype class (F32, F16 or BF16). It panics on an unknown op.
func Tolerance(op string, class backend.DType) float64 {
	t, ok := tolerances[op]
	if !ok {
		panic("backendtest: no tolerance for op " + op)
	}
	switch class {
	case backend.F16:
		return t.F16
	case backend.BF16:
		return t.BF16
	}
	return t.F32
}

// Tolerances returns a copy of the table, for reports.
func Tolerances() map[string]Tol {
	return maps.Clone(tolerances)
}
