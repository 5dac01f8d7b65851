package compress

import (
	"cmp"
	"errors"
	"math"
	"slices"
	"sync"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/quant"
)

// Dense linear algebra for the factorizations, hand-written (no dependency): matrices
// are row-major float64 slices. The large products (a weight matrix times a sketch)
// run either in float64 or, above fastProductMACs, through the CPU backend's float32
// matmul kernels (AVX-512): the sketch only has to span the right subspace, and every
// basis is re-orthonormalized in float64 (two passes), so float32 products cost the
// result float32 rounding, which is the precision of the weights themselves.

// fastProductMACs is the size (multiply-adds) from which mulT uses float32 kernels
// (a variable for tests).
var fastProductMACs = 1 << 28

var (
	fastOnce sync.Once
	fastBE   *cpu.Backend
)

func fastBackend() *cpu.Backend {
	fastOnce.Do(func() { fastBE = cpu.New(cpu.Options{}) })
	return fastBE
}

// mulT returns x·wᵀ: x [r][k], w [c][k], out [r][c].
func mulT(x []float64, r, k int, w []float64, c int) []float64 {
	out := make([]float64, r*c)
	if r == 0 || c == 0 {
		return out
	}
	if r*k*c >= fastProductMACs {
		mulTFast(out, x, r, k, w, c)
		return out
	}
	quant.ParallelRows(r, r*k*c, func(i0, i1 int) {
		for i := i0; i < i1; i++ {
			xi := x[i*k : (i+1)*k]
			for j := 0; j < c; j++ {
				out[i*c+j] = dot64(xi, w[j*k:(j+1)*k])
			}
		}
	})
	return out
}

// mulTFast is mulT through the CPU backend's float32 matmul.
func mulTFast(out, x []float64, r, k int, w []float64, c int) {
	be := fastBackend()
	xf, wf := to32(x[:r*k]), to32(w[:c*k])
	of := make([]float32, r*c)
	s, _ := be.NewStream()
	wt, err := be.LoadWeight(&backend.HostWeight{Name: "sketch", Out: c, In: k, F32: wf})
	if err == nil {
		err = be.MatMul(s, cpu.F32(of, r, c), cpu.F32(xf, r, k), wt, backend.Epilogue{})
	}
	if err != nil {
		panic("compress: float32 product: " + err.Error()) // shapes are ours: a bug
	}
	for i, v := range of {
		out[i] = float64(v)
	}
}

func to32(s []float64) []float32 {
	o := make([]float32, len(s))
	for i, v := range s {
		o[i] = float32(v)
	}
	return o
}

func to64(s []float32) []float64 {
	o := make([]float64, len(s))
	for i, v := range s {
		o[i] = float64(v)
	}
	return o
}

// dot64 is Σ a[i]·b[i] in four interleaved sums.
func dot64(a, b []float64) float64 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// transpose returns a [r][c] as [c][r].
func transpose(a []float64, r, c int) []float64 {
	t := make([]float64, r*c)
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			t[j*r+i] = a[i*c+j]
		}
	}
	return t
}

// symEig returns the eigenvalues of the symmetric matrix a [n][n] in decreasing order
// and the eigenvectors as the rows of vecs ([n][n], row c belongs to value c):
// Householder reduction to tridiagonal form, then the QL algorithm with implicit
// shifts. a is not modified.
func symEig(a []float64, n int) (vals, vecs []float64, err error) {
	if n == 0 {
		return nil, nil, nil
	}
	z := append([]float64(nil), a[:n*n]...)
	d := make([]float64, n)
	e := make([]float64, n)
	tridiagonalize(z, n, d, e)
	zt := transpose(z, n, n) // rows are the basis vectors: QL rotates pairs of rows
	if err := tridiagonalQL(d, e, zt, n); err != nil {
		return nil, nil, err
	}
	// Sort decreasing.
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sortByDesc(order, d)
	vals = make([]float64, n)
	vecs = make([]float64, n*n)
	for c, i := range order {
		vals[c] = d[i]
		copy(vecs[c*n:(c+1)*n], zt[i*n:(i+1)*n])
	}
	return vals, vecs, nil
}

func sortByDesc(order []int, key []float64) {
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(key[b], key[a]) })
}

// tridiagonalize reduces the symmetric z [n][n] in place to tridiagonal form by
// Householder reflections, leaving the accumulated orthogonal transform in z (columns
// are the basis), the diagonal in d and the sub-diagonal in e[1:] (e[0] = 0).
func tridiagonalize(z []float64, n int, d, e []float64) {
	at := func(i, j int) *float64 { return &z[i*n+j] }
	for i := n - 1; i > 0; i-- {
		l := i - 1
		var h, scale float64
		if l > 0 {
			for k := 0; k <= l; k++ {
				scale += math.Abs(*at(i, k))
			}
			if scale == 0 {
				e[i] = *at(i, l)
			} else {
				for k := 0; k <= l; k++ {
					*at(i, k) /= scale
					h += *at(i, k) * *at(i, k)
				}
				f := *at(i, l)
				g := math.Sqrt(h)
				if f >= 0 {
					g = -g
				}
				e[i] = scale * g
				h -= f * g
				*at(i, l) = f - g
				f = 0
				for j := 0; j <= l; j++ {
					*at(j, i) = *at(i, j) / h
					g = 0
					for k := 0; k <= j; k++ {
						g += *at(j, k) * *at(i, k)
					}
					for k := j + 1; k <= l; k++ {
						g += *at(k, j) * *at(i, k)
					}
					e[j] = g / h
					f += e[j] * *at(i, j)
				}
				hh := f / (h + h)
				for j := 0; j <= l; j++ {
					f = *at(i, j)
					g = e[j] - hh*f
					e[j] = g
					for k := 0; k <= j; k++ {
						*at(j, k) -= f*e[k] + g*(*at(i, k))
					}
				}
			}
		} else {
			e[i] = *at(i, l)
		}
		d[i] = h
	}
	d[0], e[0] = 0, 0
	for i := 0; i < n; i++ {
		l := i - 1
		if d[i] != 0 {
			for j := 0; j <= l; j++ {
				var g float64
				for k := 0; k <= l; k++ {
					g += *at(i, k) * *at(k, j)
				}
				for k := 0; k <= l; k++ {
					*at(k, j) -= g * *at(k, i)
				}
			}
		}
		d[i] = *at(i, i)
		*at(i, i) = 1
		for j := 0; j <= l; j++ {
			*at(j, i), *at(i, j) = 0, 0
		}
	}
}

var errNoConvergence = errors.New("compress: eigenvalue iteration did not converge")

// tridiagonalQL finds the eigenvalues (into d) of the tridiagonal matrix d, e[1:] and
// rotates the rows of zt [n][n] (the basis vectors) into its eigenvectors.
func tridiagonalQL(d, e, zt []float64, n int) error {
	for i := 1; i < n; i++ {
		e[i-1] = e[i]
	}
	e[n-1] = 0
	const eps = 0x1p-52
	for l := 0; l < n; l++ {
		for iter := 0; ; iter++ {
			m := l
			for ; m < n-1; m++ {
				dd := math.Abs(d[m]) + math.Abs(d[m+1])
				if math.Abs(e[m]) <= eps*dd {
					break
				}
			}
			if m == l {
				break
			}
			if iter == 60 {
				return errNoConvergence
			}
			g := (d[l+1] - d[l]) / (2 * e[l])
			r := math.Hypot(g, 1)
			if g >= 0 {
				g = d[m] - d[l] + e[l]/(g+r)
			} else {
				g = d[m] - d[l] + e[l]/(g-r)
			}
			s, c, p := 1.0, 1.0, 0.0
			i := m - 1
			underflow := false
			for ; i >= l; i-- {
				f := s * e[i]
				b := c * e[i]
				r = math.Hypot(f, g)
				e[i+1] = r
				if r == 0 {
					d[i+1] -= p
					e[m] = 0
					underflow = true
					break
				}
				s, c = f/r, g/r
				g = d[i+1] - p
				r = (d[i]-g)*s + 2*c*b
				p = s * r
				d[i+1] = g + p
				g = c*r - b
				zi, zj := zt[i*n:(i+1)*n], zt[(i+1)*n:(i+2)*n]
				for k := range zj {
					f := zj[k]
					zj[k] = s*zi[k] + c*f
					zi[k] = c*zi[k] - s*f
				}
			}
			if underflow {
				continue
			}
			d[l] -= p
			e[l] = g
			e[m] = 0
		}
	}
	return nil
}

// cholesky factors the symmetric positive definite a [n][n] as L·Lᵀ and returns L
// (lower triangular), or false when a is not positive definite.
func cholesky(a []float64, n int) ([]float64, bool) {
	l := make([]float64, n*n)
	for j := 0; j < n; j++ {
		s := a[j*n+j] - dot64(l[j*n:j*n+j], l[j*n:j*n+j])
		if !(s > 0) {
			return nil, false
		}
		ljj := math.Sqrt(s)
		l[j*n+j] = ljj
		for i := j + 1; i < n; i++ {
			l[i*n+j] = (a[i*n+j] - dot64(l[i*n:i*n+j], l[j*n:j*n+j])) / ljj
		}
	}
	return l, true
}

// solveRightLower overwrites each row a of x [r][n] with the solution y of y·L = a, L
// lower triangular [n][n] (so x becomes x·L⁻¹).
func solveRightLower(x []float64, r int, l []float64, n int) {
	quant.ParallelRows(r, r*n*n, func(i0, i1 int) {
		for i := i0; i < i1; i++ {
			row := x[i*n : (i+1)*n]
			// (y·L)_k = Σ_{j>=k} y_j L[j][k]: solve from the last column down.
			for k := n - 1; k >= 0; k-- {
				s := row[k]
				for j := k + 1; j < n; j++ {
					s -= row[j] * l[j*n+k]
				}
				row[k] = s / l[k*n+k]
			}
		}
	})
}

// orthonormalize returns an orthonormal basis (as rows, [l'][m], l' <= l) of the span
// of the rows of y [l][m], in two passes (the second restores the orthogonality the
// first loses to rounding). A pass is Cholesky QR — G = Y·Yᵀ = L·Lᵀ, Q = L⁻¹·Y — or,
// when G is numerically singular (dependent rows), the eigendecomposition of G, which
// drops directions whose eigenvalue is below relTol of the largest.
func orthonormalize(y []float64, l, m int) ([]float64, int, error) {
	q, n := y, l
	for pass := 0; pass < 2; pass++ {
		g := mulT(q, n, m, q, n)
		var coef []float64
		keep := n
		if c, ok := cholesky(g, n); ok {
			coef = invertLower(c, n)
		} else {
			vals, vecs, err := symEig(g, n)
			if err != nil {
				return nil, 0, err
			}
			relTol := 1e-13
			if n*m*n >= fastProductMACs {
				relTol = 1e-9 // float32 products: directions this faint are rounding
			}
			keep = 0
			for keep < n && vals[keep] > relTol*vals[0] && vals[0] > 0 {
				keep++
			}
			// row c of the basis: vals[c]^-1/2 · Σ_i vecs[c][i] q_i
			for c := 0; c < keep; c++ {
				s := 1 / math.Sqrt(vals[c])
				row := vecs[c*n : (c+1)*n]
				for i := range row {
					row[i] *= s
				}
			}
			coef = vecs[:keep*n]
		}
		q = mulT(coef, keep, n, transpose(q, n, m), m)
		n = keep
	}
	return q, n, nil
}

// invertLower returns L⁻¹ of a lower-triangular [n][n] with a non-zero diagonal.
func invertLower(l []float64, n int) []float64 {
	inv := make([]float64, n*n)
	for j := 0; j < n; j++ { // column j of L⁻¹: solve L·x = e_j
		inv[j*n+j] = 1 / l[j*n+j]
		for i := j + 1; i < n; i++ {
			var s float64
			for k := j; k < i; k++ {
				s += l[i*n+k] * inv[k*n+j]
			}
			inv[i*n+j] = -s / l[i*n+i]
		}
	}
	return inv
}
