package backendtest

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/vireo-ai/vireo/runtime/backend"
)

// ErrNotSupported is what a backend wraps (or names: any error whose text contains "not
// supported" counts) when it lacks an op, dtype or shape. Such a case is a SKIP with the
// backend's reason, never a pass.
var ErrNotSupported = errors.New("not supported")

// IsNotSupported reports whether err says an op, dtype or shape is not supported.
func IsNotSupported(err error) bool {
	return err != nil && (errors.Is(err, ErrNotSupported) || strings.Contains(strings.ToLower(err.Error()), "not supported"))
}

// Logger takes one line per finished case; testing.TB satisfies it.
type Logger interface {
	Logf(format string, args ...any)
}

// Freer, WeightFreer and KVFreer are optional abilities: when the backend under test
// (or the reference) has them, Run frees each case's memory once the case is done.
type Freer interface {
	Free(t backend.Tensor) error
}

// WeightFreer: see Freer.
type WeightFreer interface {
	FreeWeight(w *backend.Weight) error
}

// KVFreer: see Freer.
type KVFreer interface {
	FreeKV(kv *backend.KVCache) error
}

// guard is how many elements surround every tensor view on each side: NaN around
// inputs (a stray read shows up in the output), a sentinel around outputs (a stray
// write shows up as a changed guard). 64 keeps a view 128-byte aligned in any dtype.
const guard = 64

const guardValue = -1717.25 // the output guard sentinel

// Run checks every case opt selects on b against ref (the CPU backend), logging one
// line per case to log when it is not nil, and returns the report. For each case it
// draws seeded inputs, rounds them to the dtypes b allocates (so both backends see the
// same values), runs the op on both, downloads, and compares with nmse against the op's
// tolerance for the run's precision class. It also fails a case when b leaves an output
// element unwritten (outputs are poisoned with NaN first) or NaN, writes outside an
// output view or the addressed KV slots, modifies an input, panics, or returns an error
// other than "not supported".
func Run(log Logger, ref, b backend.Backend, opt Options) Report {
	if h, ok := log.(interface{ Helper() }); ok {
		h.Helper()
	}
	start := time.Now()
	rep := Report{Ref: ref.Name(), Backend: b.Name(), Large: opt.Large, Seed: opt.Seed}
	rs, rerr := ref.NewStream()
	bs, berr := b.NewStream()
	for _, c := range Cases(opt) {
		var r Result
		switch {
		case rerr != nil:
			r = Result{Op: c.Op, Name: c.Name, DType: c.DType.String(), Status: Fail, Detail: "reference stream: " + rerr.Error()}
		case berr != nil:
			r = Result{Op: c.Op, Name: c.Name, DType: c.DType.String()}
			r.fromErr("stream", berr)
		default:
			t0 := time.Now()
			r = runCase(c, &side{b: ref, s: rs}, &side{b: b, s: bs})
			r.Seconds = Num(time.Since(t0).Seconds())
		}
		rep.Results = append(rep.Results, r)
		if opt.OnResult != nil {
			opt.OnResult(r)
		}
		if log != nil {
			log.Logf("%s", r.Line())
		}
	}
	rep.summarize()
	rep.Seconds = time.Since(start).Seconds()
	return rep
}

// side is a backend with its stream.
type side struct {
	b backend.Backend
	s backend.Stream
}

// exec allocates a case's operands on e's backend (activations in dt), uploads them
// and issues the op.
type exec func(e *env, dt backend.DType) error

func runCase(c Case, ref, b *side) (res Result) {
	res = Result{Op: c.Op, Name: c.Name, DType: c.DType.String(), Status: Fail}
	defer func() {
		if p := recover(); p != nil {
			res.Status = Fail
			stack := debug.Stack()
			res.Detail = fmt.Sprintf("panic: %v\n%s", p, stack[:min(len(stack), 4000)])
		}
	}()
	// Probe the activation dtype before drawing large inputs.
	if t, err := b.b.Alloc(c.DType, 1, 1); err != nil {
		res.fromErr("alloc "+c.DType.String(), err)
		return res
	} else if f, ok := b.b.(Freer); ok {
		f.Free(t)
	}
	run := prepare[c.Op](c, caseRand(c))

	be := newEnv(b)
	defer be.free()
	if err := be.run(run, c.DType); err != nil {
		res.fromErr("", err)
		return res
	}
	re := newEnv(ref)
	re.ref = true
	defer re.free()
	if err := re.run(run, backend.F32); err != nil {
		res.Status = Fail
		if IsNotSupported(err) {
			res.Status = Skip
		}
		res.Detail = "reference: " + err.Error()
		return res
	}
	res.Class = be.class.String()
	res.Tol = Num(Tolerance(c.Op, be.class))
	res.Operands = be.describe()
	tileRows, tileCols := 0, 0
	if k, ok := b.b.(Kerneler); ok && c.Op == OpMatMul {
		w := c.DType
		if c.Int8 {
			w = backend.I8
		} else if dt, ok := be.dtypes["w"]; ok {
			w = dt
		}
		res.Kernel, tileRows, tileCols = k.MatMulKernel(c.N, c.In, c.Out, w, backend.Epilogue{Accumulate: c.Accumulate, SiLUGLU: c.GLU, Prompt: c.Prompt})
	}

	problems := slices.Clone(be.problems)
	for _, p := range re.problems {
		problems = append(problems, "reference: "+p)
	}
	nmse := 0.0
	names := slices.Sorted(maps.Keys(re.outputs))
	for _, name := range names {
		a, got := re.outputs[name], be.outputs[name]
		if len(a) != len(got) {
			problems = append(problems, fmt.Sprintf("output %s: %d values, reference %d", name, len(got), len(a)))
			nmse = math.Inf(1)
			continue
		}
		if n := NMSE(a, got); n > nmse || n != n {
			nmse = n
		}
		if d := diagnose(name, a, got, be.cols[name], float64(res.Tol), res.Kernel, tileRows, tileCols); d != nil {
			res.Diags = append(res.Diags, *d)
		}
	}
	res.NMSE = Num(nmse)
	if !(nmse <= float64(res.Tol)) {
		problems = append(problems, fmt.Sprintf("nmse %.3g > tolerance %.3g", nmse, float64(res.Tol)))
	}
	if len(problems) == 0 {
		res.Status = Pass
	} else {
		res.Detail = strings.Join(problems, "; ")
	}
	return res
}

// NMSE is the normalized mean squared error Σ(a-b)² / Σa² of b against the reference a,
// in float64. An all-zero a gives 0 when b is all zero too, else +Inf; any NaN gives NaN.
func NMSE(a, b []float32) float64 {
	var num, den float64
	for i, x := range a {
		d := float64(x) - float64(b[i])
		num += d * d
		den += float64(x) * float64(x)
	}
	switch {
	case num != num || den != den:
		return math.NaN()
	case num == 0:
		return 0
	case den == 0:
		return math.Inf(1)
	}
	return num / den
}

// env is one backend's run of one case: the tensors it allocated and how to check them.
type env struct {
	side
	ref      bool          // the reference run: ops with index inputs run a row at a time
	class    backend.DType // least precise float dtype met
	dtypes   map[string]backend.DType
	tens     []*gtensor
	kvs      []*gkv
	weights  []*backend.Weight
	kvAll    []*backend.KVCache
	outputs  map[string][]float32
	cols     map[string]int // row width of each output
	problems []string
	dropped  int
}

func newEnv(s *side) *env {
	return &env{side: *s, class: backend.F32, dtypes: map[string]backend.DType{}, outputs: map[string][]float32{}, cols: map[string]int{}}
}

// gtensor is a view in the middle of a larger allocation.
type gtensor struct {
	name        string
	out         bool // the op writes the view
	whole, view backend.Tensor
	before      []byte
}

// gkv is a KV cache with the slots an op may write (layer < 0: none).
type gkv struct {
	kv     *backend.KVCache
	layer  int
	slots  []int32
	before [][]byte // [2*layer] K, [2*layer+1] V
}

func (e *env) problem(format string, args ...any) {
	if len(e.problems) >= 8 {
		e.dropped++
		return
	}
	e.problems = append(e.problems, fmt.Sprintf(format, args...))
}

func (e *env) note(what string, dt backend.DType) {
	e.dtypes[what] = dt
	if precisionRank(dt) > precisionRank(e.class) {
		e.class = dt
	}
}

func (e *env) describe() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(e.dtypes)) {
		parts = append(parts, k+"="+e.dtypes[k].String())
	}
	return strings.Join(parts, " ")
}

// run issues the case, waits for it and collects its outputs and problems.
func (e *env) run(x exec, dt backend.DType) error {
	if err := x(e, dt); err != nil {
		return err
	}
	if err := e.b.Sync(e.s); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	if err := e.collect(); err != nil {
		return err
	}
	if e.dropped > 0 {
		e.problems = append(e.problems, fmt.Sprintf("(%d more problems)", e.dropped))
	}
	return nil
}

func (e *env) free() {
	if f, ok := e.b.(Freer); ok {
		for _, t := range e.tens {
			f.Free(t.whole)
		}
	}
	if f, ok := e.b.(WeightFreer); ok {
		for _, w := range e.weights {
			f.FreeWeight(w)
		}
	}
	if f, ok := e.b.(KVFreer); ok {
		for _, kv := range e.kvAll {
			f.FreeKV(kv)
		}
	}
}

func (e *env) download(t backend.Tensor) ([]byte, error) {
	buf := make([]byte, t.Len()*t.DType.Size())
	if err := e.b.Download(buf, t.DType, t); err != nil {
		return nil, fmt.Errorf("download %s: %w", t, err)
	}
	return buf, nil
}

// tensor allocates rows×cols of dt with guards, rounds data to the dtype the backend
// gave (in place, so the reference later sees the same values) and uploads it with the
// guards set to fill.
func (e *env) tensor(name string, out bool, dt backend.DType, rows, cols int, data []float32, fill float32) (backend.Tensor, error) {
	n := rows * cols
	whole, err := e.b.Alloc(dt, 1, n+2*guard)
	if err != nil {
		return backend.Tensor{}, fmt.Errorf("alloc %s %s[%d][%d]: %w", name, dt, rows, cols, err)
	}
	g := &gtensor{name: name, out: out, whole: whole}
	e.tens = append(e.tens, g)
	dt = whole.DType
	if !isFloat(dt) || whole.Len() != n+2*guard {
		return backend.Tensor{}, fmt.Errorf("alloc %s: asked for %s[1][%d], got %s", name, dt, n+2*guard, whole)
	}
	e.note(name, dt)
	host := make([]float32, n+2*guard)
	for i := range host {
		host[i] = fill
	}
	if data != nil {
		roundAll(dt, data)
		copy(host[guard:], data)
	} else {
		nan := float32(math.NaN())
		for i := guard; i < guard+n; i++ {
			host[i] = nan
		}
	}
	// What was uploaded is the baseline the guards and inputs are checked against (a
	// backend whose download differs from its upload fails those checks too).
	g.before = encode(dt, host)
	if err := e.b.Upload(whole, g.before, dt); err != nil {
		return backend.Tensor{}, fmt.Errorf("upload %s: %w", name, err)
	}
	g.view = whole.View(guard, rows, cols)
	return g.view, nil
}

// input is an operand the op only reads; NaN guards.
func (e *env) input(name string, dt backend.DType, rows, cols int, data []float32) (backend.Tensor, error) {
	return e.tensor(name, false, dt, rows, cols, data, float32(math.NaN()))
}

// output is an operand the op writes: poisoned with NaN when init is nil (every element
// must be written), else holding init (accumulate, in-place ops); sentinel guards.
func (e *env) output(name string, dt backend.DType, rows, cols int, init []float32) (backend.Tensor, error) {
	return e.tensor(name, true, dt, rows, cols, init, guardValue)
}

// i8Poison fills an int8 output before the op (no quantizer writes -128: they clamp
// to ±127), i8Guard its guards.
const i8Poison, i8Guard = -128, 90

// outputI8 is an int8 output [rows][cols] (quantized activations): poisoned with
// i8Poison, which collect reports as unwritten, between guards of i8Guard.
func (e *env) outputI8(name string, rows, cols int) (backend.Tensor, error) {
	n := rows * cols
	whole, err := e.b.Alloc(backend.I8, 1, n+2*guard)
	if err != nil {
		return backend.Tensor{}, fmt.Errorf("alloc %s i8[%d][%d]: %w", name, rows, cols, err)
	}
	g := &gtensor{name: name, out: true, whole: whole}
	e.tens = append(e.tens, g)
	if whole.DType != backend.I8 || whole.Len() != n+2*guard {
		return backend.Tensor{}, fmt.Errorf("alloc %s: asked for i8[1][%d], got %s", name, n+2*guard, whole)
	}
	e.dtypes[name] = backend.I8
	g.before = make([]byte, n+2*guard)
	for i := range g.before {
		v := int8(i8Guard)
		if i >= guard && i < guard+n {
			v = i8Poison
		}
		g.before[i] = byte(v)
	}
	if err := e.b.Upload(whole, g.before, backend.I8); err != nil {
		return backend.Tensor{}, fmt.Errorf("upload %s: %w", name, err)
	}
	g.view = whole.View(guard, rows, cols)
	return g.view, nil
}

func (e *env) weight(h *backend.HostWeight) (*backend.Weight, error) {
	w, err := e.b.LoadWeight(h)
	if err != nil {
		return nil, fmt.Errorf("load weight %s: %w", h.Name, err)
	}
	e.weights = append(e.weights, w)
	switch {
	case w.Out != h.Out || w.In != h.In:
		return nil, fmt.Errorf("load weight %s: [%d][%d] came back [%d][%d]", h.Name, h.Out, h.In, w.Out, w.In)
	case h.Blocks != nil:
		e.dtypes["w"] = h.BlockType // kept in its own (or the backend's 4-bit) form
	case isFloat(w.W.DType):
		e.note("w", w.W.DType)
	case w.W.DType != backend.I8:
		return nil, fmt.Errorf("load weight %s: unexpected dtype %s", h.Name, w.W.DType)
	default:
		e.dtypes["w"] = backend.I8
	}
	return w, nil
}

// allocKV allocates a cache and notes its dtype.
func (e *env) allocKV(layers, blocks, bs, kvh, hd int) (*backend.KVCache, error) {
	kv, err := e.b.AllocKV(layers, blocks, bs, kvh, hd)
	if err != nil {
		return nil, fmt.Errorf("alloc kv: %w", err)
	}
	e.kvAll = append(e.kvAll, kv)
	if len(kv.K) != layers || len(kv.V) != layers {
		return nil, fmt.Errorf("alloc kv: %d layers came back as %d K and %d V tensors", layers, len(kv.K), len(kv.V))
	}
	n := blocks * kvh * bs * hd
	dt := kv.K[0].DType
	for l := 0; l < layers; l++ {
		for _, t := range []backend.Tensor{kv.K[l], kv.V[l]} {
			if t.DType != dt || !isFloat(dt) || t.Len() != n {
				return nil, fmt.Errorf("alloc kv: layer %d tensor %s; want %d elements of one float dtype", l, t, n)
			}
		}
	}
	e.note("kv", dt)
	return kv, nil
}

// fillKV uploads contents ([2*layer] K, [2*layer+1] V, each [blocks][kvh][bs][hd]),
// rounded in place to the cache's dtype, and watches the cache: only the slots of
// layer may change.
func (e *env) fillKV(kv *backend.KVCache, contents [][]float32, layer int, slots []int32) error {
	g := &gkv{kv: kv, layer: layer, slots: slots}
	for l := 0; l < kv.Layers; l++ {
		for j, t := range []backend.Tensor{kv.K[l], kv.V[l]} {
			data := contents[2*l+j]
			roundAll(t.DType, data)
			b := encode(t.DType, data)
			if err := e.b.Upload(t, b, t.DType); err != nil {
				return fmt.Errorf("upload kv layer %d: %w", l, err)
			}
			g.before = append(g.before, b)
		}
	}
	e.kvs = append(e.kvs, g)
	return nil
}

// op wraps an op's error.
func op(name string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func (e *env) collect() error {
	for _, g := range e.tens {
		after, err := e.download(g.whole)
		if err != nil {
			return err
		}
		es := g.whole.DType.Size()
		n := g.view.Len()
		changed := func(lo, hi int) (count, first int) {
			first = -1
			if bytes.Equal(after[lo*es:hi*es], g.before[lo*es:hi*es]) {
				return 0, -1
			}
			for i := lo; i < hi; i++ {
				if !bytes.Equal(after[i*es:(i+1)*es], g.before[i*es:(i+1)*es]) {
					if first < 0 {
						first = i
					}
					count++
				}
			}
			return count, first
		}
		if !g.out {
			if c, f := changed(0, n+2*guard); c > 0 {
				e.problem("input %s modified: %d elements, first at %d of the view", g.name, c, f-guard)
			}
			continue
		}
		if c, f := changed(0, guard); c > 0 {
			e.problem("stray write before output %s: %d guard elements changed, first %d before the view", g.name, c, guard-f)
		}
		if c, f := changed(guard+n, n+2*guard); c > 0 {
			e.problem("stray write after output %s: %d guard elements changed, first %d after the view", g.name, c, f-guard-n)
		}
		if g.whole.DType == backend.I8 {
			vals, unwritten, first := make([]float32, n), 0, -1
			for i, b := range after[guard : guard+n] {
				vals[i] = float32(int8(b))
				if int8(b) == i8Poison {
					if first < 0 {
						first = i
					}
					unwritten++
				}
			}
			if unwritten > 0 {
				e.problem("output %s: %d elements unwritten (still %d), first at row %d col %d", g.name, unwritten, i8Poison, first/g.view.Cols, first%g.view.Cols)
			}
			e.outputs[g.name] = vals
			e.cols[g.name] = g.view.Cols
			continue
		}
		vals := decode(g.whole.DType, after[guard*es:(guard+n)*es])
		e.nonFinite(g.name, vals, g.view.Cols)
		e.outputs[g.name] = vals
		e.cols[g.name] = g.view.Cols
	}
	for _, g := range e.kvs {
		if err := e.collectKV(g); err != nil {
			return err
		}
	}
	return nil
}

// nonFinite flags NaN and Inf elements of an output: unwritten (still poisoned) or bad.
func (e *env) nonFinite(name string, vals []float32, cols int) {
	count, first := 0, -1
	for i, v := range vals {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			if first < 0 {
				first = i
			}
			count++
		}
	}
	if count > 0 {
		e.problem("output %s: %d of %d elements NaN/Inf (unwritten or bad), first at row %d col %d", name, count, len(vals), first/cols, first%cols)
	}
}

func (e *env) collectKV(g *gkv) error {
	kv := g.kv
	hd, nkv, bs := kv.HeadDim, kv.KVHeads, kv.BlockSize
	// row of head h of slot s: (block*nkv + h)*bs + offset
	row := func(slot int32, h int) int {
		return (int(slot)/bs*nkv+h)*bs + int(slot)%bs
	}
	addressed := make([]bool, kv.Blocks*nkv*bs) // rows of layer g.layer the op writes
	for _, s := range g.slots {
		for h := 0; h < nkv; h++ {
			addressed[row(s, h)] = true
		}
	}
	for l := 0; l < kv.Layers; l++ {
		for j, t := range []backend.Tensor{kv.K[l], kv.V[l]} {
			which := "KV"[j : j+1]
			after, err := e.download(t)
			if err != nil {
				return err
			}
			before := g.before[2*l+j]
			rb := hd * t.DType.Size() // bytes per cache row
			count, first := 0, -1
			if !bytes.Equal(after, before) {
				for r := 0; r < len(addressed); r++ {
					if l == g.layer && addressed[r] {
						continue
					}
					if !bytes.Equal(after[r*rb:(r+1)*rb], before[r*rb:(r+1)*rb]) {
						if first < 0 {
							first = r
						}
						count++
					}
				}
			}
			if count > 0 {
				e.problem("stray write into the KV cache: layer %d %s, %d rows outside the addressed slots changed, first in block %d kv head %d offset %d",
					l, which, count, first/bs/nkv, first/bs%nkv, first%bs)
			}
			if l != g.layer {
				continue
			}
			all := decode(t.DType, after)
			vals := make([]float32, 0, len(g.slots)*nkv*hd)
			for _, s := range g.slots {
				for h := 0; h < nkv; h++ {
					r := row(s, h)
					vals = append(vals, all[r*hd:(r+1)*hd]...)
				}
			}
			name := strings.ToLower(which) + "@slots"
			e.nonFinite(name, vals, nkv*hd)
			e.outputs[name] = vals
			e.cols[name] = nkv * hd
		}
	}
	return nil
}
