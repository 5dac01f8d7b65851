// Package compress prunes a model's block matrices — the seven linear layers of every
// transformer block — by low-rank factorization and 2:4 semi-structured sparsity:
// `vireo compress IN OUT`. The embedding and the classifier stay dense.
//
//   - Low-rank: W [Out][In] ≈ B·A with A [r][In], B [Out][r], from a truncated SVD
//     computed here by randomized range finding with power iterations (svd.go, with the
//     dense linear algebra it needs in linalg.go: Cholesky QR, a Householder-QL
//     symmetric eigensolver; no dependency). The rank per matrix comes from a rank
//     fraction, a parameter budget or an energy threshold. Optionally activation-aware
//     (SVD-LLM): the SVD truncates W·S, S the Cholesky factor of the layer inputs' XᵀX
//     over calibration text, so the singular values measure output error on real
//     inputs; A is then multiplied by S⁻¹. A matrix whose rank would not save weights
//     (r·(Out+In) ≥ Out·In) stays dense.
//   - 2:4: in each group of 4 consecutive inputs of a row the two weights of largest
//     |W| (magnitude) or |W|·‖X_k‖ (Wanda) are kept (sparse.go).
//   - Calibration (calib.go) runs text through the uncompressed model on a CPU backend
//     that records each matrix's inputs. The text must be the training part of the data
//     the model is evaluated on, never its held-out part.
//
// The output is a GGUF file with the compressed matrices in the forms of
// loader/compressed.go (two factor tensors; kept values plus I8 metadata), loaded by
// runtime/model as backend.LowRank and backend.Sparse24 weights; with int8 weights each
// factor and each row of kept values is quantized with its own row scales at load, so
// the compression composes with int8.
package compress
