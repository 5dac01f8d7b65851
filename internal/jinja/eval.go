package jinja

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Options configures parsing and rendering. The zero value is Jinja's default
// environment (trim_blocks and lstrip_blocks off) with default limits.
type Options struct {
	// TrimBlocks removes the first newline after a block or comment tag.
	TrimBlocks bool
	// LstripBlocks strips spaces and tabs from the start of a line up to a
	// block or comment tag.
	LstripBlocks bool
	// KeepTrailingNewline keeps a single trailing newline of the source, which
	// Jinja drops by default.
	KeepTrailingNewline bool
	// MaxSteps bounds the work of one render (expression evaluations,
	// statements and loop iterations); 0 means DefaultMaxSteps.
	MaxSteps int
	// MaxOutput bounds the bytes one render may produce, including captured
	// output of set blocks and macros and intermediate strings; 0 means
	// DefaultMaxOutput.
	MaxOutput int
}

// HFOptions are the settings transformers uses for chat templates
// (ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)).
var HFOptions = Options{TrimBlocks: true, LstripBlocks: true}

const (
	DefaultMaxSteps  = 5_000_000
	DefaultMaxOutput = 16 << 20
	maxCallDepth     = 100
)

// NowKey is the context variable strftime_now reads the current time from
// when it is present (a time.Time, or a string in RFC 3339 or "2006-01-02"
// form), so renders can be made deterministic. Without it strftime_now uses
// the local clock.
const NowKey = "strftime_now_time"

// LimitError reports a render that exceeded Options.MaxSteps, MaxOutput or the
// call depth limit.
type LimitError struct{ Msg string }

func (e *LimitError) Error() string { return "jinja: " + e.Msg }

// RaiseError is returned when a template calls raise_exception(msg).
type RaiseError struct {
	Pos     Pos
	Message string
}

func (e *RaiseError) Error() string {
	return fmt.Sprintf("jinja: %s: template raised an exception: %s", e.Pos, e.Message)
}

// RenderError is any other failure while rendering, with the position of the
// expression or statement that failed.
type RenderError struct {
	Pos Pos
	Msg string
}

func (e *RenderError) Error() string { return fmt.Sprintf("jinja: %s: %s", e.Pos, e.Msg) }

var (
	errBreak    = errors.New("break")
	errContinue = errors.New("continue")
)

type scope struct {
	vars   map[string]any
	parent *scope
}

func newScope(parent *scope) *scope { return &scope{vars: map[string]any{}, parent: parent} }

func (s *scope) lookup(name string) (any, bool) {
	for c := s; c != nil; c = c.parent {
		if v, ok := c.vars[name]; ok {
			return v, true
		}
	}
	return nil, false
}

type renderer struct {
	opts     Options
	steps    int
	outBytes int
	depth    int
	now      time.Time
	hasNow   bool
	globals  *scope
	caller   *callable // pending caller for the macro being called by a {% call %} block
}

func (r *renderer) errf(pos Pos, format string, args ...any) error {
	return &RenderError{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// step charges one unit of work.
func (r *renderer) step() error {
	r.steps++
	if r.steps > r.opts.MaxSteps {
		return &LimitError{Msg: fmt.Sprintf("render exceeded %d steps (runaway loop or recursion?)", r.opts.MaxSteps)}
	}
	return nil
}

// stepN charges n units of work at once (filters over long sequences, range,
// list repetition), so big inputs cannot make one step do unbounded work.
func (r *renderer) stepN(n int) error {
	if n < 0 || n > r.opts.MaxSteps {
		n = r.opts.MaxSteps
	}
	r.steps += n
	if r.steps > r.opts.MaxSteps {
		return &LimitError{Msg: fmt.Sprintf("render exceeded %d steps (runaway loop or recursion?)", r.opts.MaxSteps)}
	}
	return nil
}

// grow charges n bytes of produced text.
func (r *renderer) grow(n int) error {
	r.outBytes += n
	if r.outBytes > r.opts.MaxOutput {
		return &LimitError{Msg: fmt.Sprintf("render output exceeded %d bytes", r.opts.MaxOutput)}
	}
	return nil
}

// checkLen rejects intermediate strings or lists larger than the output limit.
func (r *renderer) checkLen(n int) error {
	if n > r.opts.MaxOutput {
		return &LimitError{Msg: fmt.Sprintf("value larger than the %d byte output limit", r.opts.MaxOutput)}
	}
	return nil
}

func (r *renderer) write(b *strings.Builder, s string) error {
	if err := r.grow(len(s)); err != nil {
		return err
	}
	b.WriteString(s)
	return nil
}

func (r *renderer) execBody(body []node, sc *scope, out *strings.Builder) error {
	for _, n := range body {
		if err := r.exec(n, sc, out); err != nil {
			return err
		}
	}
	return nil
}

// capture renders body into a new string (set blocks, macros, filter blocks).
func (r *renderer) capture(body []node, sc *scope) (string, error) {
	var b strings.Builder
	err := r.execBody(body, sc, &b)
	return b.String(), err
}

func (r *renderer) exec(n node, sc *scope, out *strings.Builder) error {
	if err := r.step(); err != nil {
		return err
	}
	switch n := n.(type) {
	case *textNode:
		return r.write(out, n.text)
	case *outputNode:
		v, err := r.eval(n.expr, sc)
		if err != nil {
			return err
		}
		return r.write(out, toStr(v))
	case *ifNode:
		for i, c := range n.conds {
			v, err := r.eval(c, sc)
			if err != nil {
				return err
			}
			if truthy(v) {
				return r.execBody(n.bodies[i], sc, out)
			}
		}
		return r.execBody(n.els, sc, out)
	case *forNode:
		return r.execFor(n, sc, out)
	case *setNode:
		return r.execSet(n, sc)
	case *macroNode:
		sc.vars[n.name] = r.makeMacro(n.name, n.params, n.defaults, n.body, sc)
		return nil
	case *callBlockNode:
		caller := r.makeMacro("caller", n.params, n.defaults, n.body, sc)
		v, err := r.evalCallWith(n.call, sc, caller)
		if err != nil {
			return err
		}
		return r.write(out, toStr(v))
	case *filterBlockNode:
		s, err := r.capture(n.body, sc)
		if err != nil {
			return err
		}
		var v any = s
		for _, f := range n.filters {
			if v, err = r.applyFilter(f, v, sc); err != nil {
				return err
			}
		}
		return r.write(out, toStr(v))
	case *breakNode:
		return errBreak
	case *continueNode:
		return errContinue
	}
	return fmt.Errorf("jinja: internal error: unknown node %T", n)
}

func (r *renderer) execSet(n *setNode, sc *scope) error {
	var v any
	var err error
	if n.value != nil {
		v, err = r.eval(n.value, sc)
	} else {
		var s string
		s, err = r.capture(n.body, sc)
		v = s
		for _, f := range n.filters {
			if err != nil {
				break
			}
			v, err = r.applyFilter(f, v, sc)
		}
	}
	if err != nil {
		return err
	}
	switch {
	case len(n.targets) == 0: // {% do %}
		return nil
	case n.attr != "":
		obj, _ := sc.lookup(n.targets[0])
		ns, ok := obj.(*Namespace)
		if !ok {
			return r.errf(n.pos, "cannot assign attribute '%s' on '%s' (%s): only namespace() objects support attribute assignment", n.attr, n.targets[0], TypeName(obj))
		}
		ns.d.set(n.attr, v)
	case len(n.targets) == 1:
		sc.vars[n.targets[0]] = v
	default:
		items, err := iterate(v)
		if err != nil || isUndefined(v) {
			return r.errf(n.pos, "cannot unpack %s into %d variables", TypeName(v), len(n.targets))
		}
		if len(items) != len(n.targets) {
			return r.errf(n.pos, "cannot unpack %d values into %d variables", len(items), len(n.targets))
		}
		for i, t := range n.targets {
			sc.vars[t] = items[i]
		}
	}
	return nil
}

// loopState is the "loop" variable of a for block.
type loopState struct {
	items []any
	i     int
}

func (l *loopState) attr(name string) any {
	n := len(l.items)
	switch name {
	case "index":
		return int64(l.i + 1)
	case "index0":
		return int64(l.i)
	case "revindex":
		return int64(n - l.i)
	case "revindex0":
		return int64(n - l.i - 1)
	case "first":
		return l.i == 0
	case "last":
		return l.i == n-1
	case "length":
		return int64(n)
	case "depth":
		return int64(1)
	case "depth0":
		return int64(0)
	case "previtem":
		if l.i > 0 {
			return l.items[l.i-1]
		}
	case "nextitem":
		if l.i+1 < n {
			return l.items[l.i+1]
		}
	case "cycle":
		return &callable{name: "loop.cycle", fn: func(r *renderer, args []any, kw *Dict) (any, error) {
			if len(args) == 0 {
				return nil, errors.New("loop.cycle() needs at least one argument")
			}
			return args[l.i%len(args)], nil
		}}
	}
	return Undefined{name: "loop." + name}
}

func (r *renderer) execFor(n *forNode, sc *scope, out *strings.Builder) error {
	seq, err := r.eval(n.iter, sc)
	if err != nil {
		return err
	}
	items, err := iterate(seq)
	if err != nil {
		return r.errf(n.iter.position(), "for loop: %v", err)
	}
	inner := newScope(sc)
	bind := func(item any) error {
		if len(n.targets) == 1 {
			inner.vars[n.targets[0]] = item
			return nil
		}
		parts, err := iterate(item)
		if err != nil || isUndefined(item) {
			return r.errf(n.pos, "cannot unpack %s into %d loop variables", TypeName(item), len(n.targets))
		}
		if len(parts) != len(n.targets) {
			return r.errf(n.pos, "cannot unpack %d values into %d loop variables", len(parts), len(n.targets))
		}
		for i, t := range n.targets {
			inner.vars[t] = parts[i]
		}
		return nil
	}
	if n.cond != nil {
		var kept []any
		for _, it := range items {
			if err := r.step(); err != nil {
				return err
			}
			if err := bind(it); err != nil {
				return err
			}
			c, err := r.eval(n.cond, inner)
			if err != nil {
				return err
			}
			if truthy(c) {
				kept = append(kept, it)
			}
		}
		items = kept
	}
	if len(items) == 0 {
		return r.execBody(n.els, sc, out)
	}
	loop := &loopState{items: items}
	for i, it := range items {
		if err := r.step(); err != nil {
			return err
		}
		loop.i = i
		inner.vars["loop"] = loop
		if err := bind(it); err != nil {
			return err
		}
		err := r.execBody(n.body, inner, out)
		if err == errBreak {
			break
		}
		if err != nil && err != errContinue {
			return err
		}
	}
	return nil
}

// makeMacro builds the callable for a macro or a call block's caller.
func (r *renderer) makeMacro(name string, params []string, defaults []expr, body []node, def *scope) *callable {
	return &callable{name: name, fn: func(r *renderer, args []any, kw *Dict) (any, error) {
		if r.depth >= maxCallDepth {
			return nil, &LimitError{Msg: fmt.Sprintf("macro calls nested deeper than %d (runaway recursion?)", maxCallDepth)}
		}
		r.depth++
		defer func() { r.depth-- }()
		sc := newScope(def)
		if r.caller != nil {
			sc.vars["caller"] = r.caller
			r.caller = nil
		}
		var varargs []any
		for i, a := range args {
			if i < len(params) {
				sc.vars[params[i]] = a
			} else {
				varargs = append(varargs, a)
			}
		}
		extra := NewDict()
		if kw != nil {
			for _, k := range kw.keys {
				found := false
				for i, p := range params {
					if p == k {
						if i < len(args) {
							return nil, fmt.Errorf("macro '%s' got multiple values for argument '%s'", name, k)
						}
						sc.vars[p] = kw.m[k]
						found = true
					}
				}
				if !found {
					extra.set(k, kw.m[k])
				}
			}
		}
		for i, p := range params {
			if _, ok := sc.vars[p]; ok {
				continue
			}
			if defaults[i] != nil {
				v, err := r.eval(defaults[i], sc)
				if err != nil {
					return nil, err
				}
				sc.vars[p] = v
			} else {
				sc.vars[p] = Undefined{name: p}
			}
		}
		if varargs == nil {
			varargs = []any{}
		}
		sc.vars["varargs"] = varargs
		sc.vars["kwargs"] = extra
		return r.capture(body, sc)
	}}
}

func (r *renderer) eval(e expr, sc *scope) (any, error) {
	if err := r.step(); err != nil {
		return nil, err
	}
	switch e := e.(type) {
	case *literal:
		return e.val, nil
	case *nameExpr:
		if v, ok := sc.lookup(e.name); ok {
			return v, nil
		}
		return Undefined{name: e.name}, nil
	case *listExpr:
		out := make([]any, len(e.items))
		for i, it := range e.items {
			v, err := r.eval(it, sc)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case *dictExpr:
		d := NewDict()
		for i := range e.keys {
			k, err := r.eval(e.keys[i], sc)
			if err != nil {
				return nil, err
			}
			ks, ok := k.(string)
			if !ok {
				return nil, r.errf(e.keys[i].position(), "dict keys must be strings, got %s", TypeName(k))
			}
			v, err := r.eval(e.vals[i], sc)
			if err != nil {
				return nil, err
			}
			d.set(ks, v)
		}
		return d, nil
	case *attrExpr:
		obj, err := r.eval(e.obj, sc)
		if err != nil {
			return nil, err
		}
		return getAttr(obj, e.name), nil
	case *itemExpr:
		obj, err := r.eval(e.obj, sc)
		if err != nil {
			return nil, err
		}
		key, err := r.eval(e.key, sc)
		if err != nil {
			return nil, err
		}
		return getItem(obj, key), nil
	case *sliceExpr:
		return r.evalSlice(e, sc)
	case *callExpr:
		return r.evalCall(e, sc)
	case *filterExpr:
		v, err := r.eval(e.obj, sc)
		if err != nil {
			return nil, err
		}
		return r.applyFilter(e, v, sc)
	case *testExpr:
		v, err := r.eval(e.obj, sc)
		if err != nil {
			return nil, err
		}
		args, err := r.evalList(e.args, sc)
		if err != nil {
			return nil, err
		}
		ok, err := runTest(e.name, v, args)
		if err != nil {
			return nil, r.errf(e.pos, "test '%s': %v", e.name, err)
		}
		return ok != e.negate, nil
	case *unaryExpr:
		v, err := r.eval(e.x, sc)
		if err != nil {
			return nil, err
		}
		switch e.op {
		case "not":
			return !truthy(v), nil
		case "-":
			switch x := v.(type) {
			case int64:
				if x == math.MinInt64 {
					return -float64(x), nil
				}
				return -x, nil
			case float64:
				return -x, nil
			case bool:
				i, _ := toInt(x)
				return -i, nil
			}
		case "+":
			switch x := v.(type) {
			case int64, float64:
				return x, nil
			case bool:
				i, _ := toInt(x)
				return i, nil
			}
		}
		return nil, r.errf(e.pos, "bad operand type for unary %s: '%s'%s", e.op, TypeName(v), undefNote(v))
	case *binExpr:
		return r.evalBinary(e, sc)
	case *compareExpr:
		l, err := r.eval(e.l, sc)
		if err != nil {
			return nil, err
		}
		for i, op := range e.ops {
			rv, err := r.eval(e.rest[i], sc)
			if err != nil {
				return nil, err
			}
			if l, ok := rv.([]any); ok {
				if err := r.stepN(len(l)); err != nil {
					return nil, err
				}
			}
			ok, err := compareOp(op, l, rv)
			if err != nil {
				return nil, r.errf(e.pos, "%v", err)
			}
			if !ok {
				return false, nil
			}
			l = rv
		}
		return true, nil
	case *condExpr:
		c, err := r.eval(e.cond, sc)
		if err != nil {
			return nil, err
		}
		if truthy(c) {
			return r.eval(e.yes, sc)
		}
		if e.no == nil {
			return Undefined{}, nil
		}
		return r.eval(e.no, sc)
	}
	return nil, fmt.Errorf("jinja: internal error: unknown expression %T", e)
}

func undefNote(v any) string {
	if u, ok := v.(Undefined); ok && u.name != "" {
		return fmt.Sprintf(" ('%s' is undefined)", u.name)
	}
	return ""
}

func (r *renderer) evalList(es []expr, sc *scope) ([]any, error) {
	if len(es) == 0 {
		return nil, nil
	}
	out := make([]any, len(es))
	for i, e := range es {
		v, err := r.eval(e, sc)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func (r *renderer) evalKw(names []string, vals []expr, sc *scope) (*Dict, error) {
	if len(names) == 0 {
		return nil, nil
	}
	d := NewDict()
	for i, n := range names {
		v, err := r.eval(vals[i], sc)
		if err != nil {
			return nil, err
		}
		d.set(n, v)
	}
	return d, nil
}

func compareOp(op string, l, r any) (bool, error) {
	switch op {
	case "==":
		return equal(l, r), nil
	case "!=":
		return !equal(l, r), nil
	case "in", "not in":
		in, err := contains(r, l)
		if err != nil {
			return false, err
		}
		return in == (op == "in"), nil
	}
	c, err := compare(l, r)
	if err != nil {
		return false, fmt.Errorf("'%s' not supported between instances of '%s' and '%s'%s", op, TypeName(l), TypeName(r), undefNote(l)+undefNote(r))
	}
	switch op {
	case "<":
		return c < 0, nil
	case "<=":
		return c <= 0, nil
	case ">":
		return c > 0, nil
	}
	return c >= 0, nil
}

// contains is Python's "needle in hay".
func contains(hay, needle any) (bool, error) {
	switch h := hay.(type) {
	case string:
		n, ok := needle.(string)
		if !ok {
			return false, fmt.Errorf("'in <string>' requires string as left operand, not %s", TypeName(needle))
		}
		return strings.Contains(h, n), nil
	case []any:
		for _, x := range h {
			if equal(x, needle) {
				return true, nil
			}
		}
		return false, nil
	case *Dict:
		k, ok := needle.(string)
		if !ok {
			return false, nil
		}
		_, found := h.m[k]
		return found, nil
	case *Namespace:
		k, _ := needle.(string)
		_, found := h.d.m[k]
		return found, nil
	case Undefined:
		return false, nil
	}
	return false, fmt.Errorf("argument of type '%s' is not iterable", TypeName(hay))
}

func (r *renderer) evalBinary(e *binExpr, sc *scope) (any, error) {
	l, err := r.eval(e.l, sc)
	if err != nil {
		return nil, err
	}
	switch e.op {
	case "and":
		if !truthy(l) {
			return l, nil
		}
		return r.eval(e.r, sc)
	case "or":
		if truthy(l) {
			return l, nil
		}
		return r.eval(e.r, sc)
	}
	rv, err := r.eval(e.r, sc)
	if err != nil {
		return nil, err
	}
	v, err := r.arith(e.op, l, rv)
	if err != nil {
		var le *LimitError
		if errors.As(err, &le) {
			return nil, err
		}
		return nil, r.errf(e.pos, "%v", err)
	}
	return v, nil
}

func (r *renderer) arith(op string, l, rv any) (any, error) {
	if op == "~" {
		s := toStr(l) + toStr(rv)
		return s, r.checkLen(len(s))
	}
	li, lInt := toInt(l)
	ri, rInt := toInt(rv)
	lf, lNum := toNumber(l)
	rf, rNum := toNumber(rv)
	if lNum && rNum {
		bothInt := lInt && rInt
		switch op {
		case "+":
			if bothInt {
				if s := li + ri; (s > li) == (ri > 0) {
					return s, nil
				}
				return nil, errors.New("integer overflow")
			}
			return lf + rf, nil
		case "-":
			if bothInt {
				if s := li - ri; (s < li) == (ri > 0) {
					return s, nil
				}
				return nil, errors.New("integer overflow")
			}
			return lf - rf, nil
		case "*":
			if bothInt {
				if li == 0 || ri == 0 {
					return int64(0), nil
				}
				p := li * ri
				if p/ri != li || (li == -1 && ri == math.MinInt64) || (ri == -1 && li == math.MinInt64) {
					return nil, errors.New("integer overflow")
				}
				return p, nil
			}
			return lf * rf, nil
		case "/":
			if rf == 0 {
				return nil, errors.New("division by zero")
			}
			return lf / rf, nil
		case "//":
			if rf == 0 {
				return nil, errors.New("integer division or modulo by zero")
			}
			if bothInt {
				q := li / ri
				if (li%ri != 0) && ((li < 0) != (ri < 0)) {
					q--
				}
				return q, nil
			}
			return math.Floor(lf / rf), nil
		case "%":
			if rf == 0 {
				return nil, errors.New("integer division or modulo by zero")
			}
			if bothInt {
				m := li % ri
				if m != 0 && ((m < 0) != (ri < 0)) {
					m += ri
				}
				return m, nil
			}
			m := math.Mod(lf, rf)
			if m != 0 && ((m < 0) != (rf < 0)) {
				m += rf
			}
			return m, nil
		case "**":
			if bothInt && ri >= 0 {
				switch {
				case li == 0 || li == 1:
					if ri == 0 {
						return int64(1), nil
					}
					return li, nil
				case li == -1:
					if ri%2 == 0 {
						return int64(1), nil
					}
					return int64(-1), nil
				case ri > 64:
					return nil, errors.New("integer overflow")
				}
				res := int64(1)
				for k := int64(0); k < ri; k++ {
					next := res * li
					if next/li != res {
						return nil, errors.New("integer overflow")
					}
					res = next
				}
				return res, nil
			}
			if lf == 0 && rf < 0 {
				return nil, errors.New("0.0 cannot be raised to a negative power")
			}
			p := math.Pow(lf, rf)
			if math.IsNaN(p) {
				return nil, errors.New("exponentiation result is not a real number")
			}
			return p, nil
		}
	}
	if isUndefined(l) || isUndefined(rv) {
		return nil, fmt.Errorf("unsupported operand type(s) for %s: '%s' and '%s'%s", op, TypeName(l), TypeName(rv), undefNote(l)+undefNote(rv))
	}
	switch op {
	case "+":
		switch x := l.(type) {
		case string:
			if y, ok := rv.(string); ok {
				return x + y, r.checkLen(len(x) + len(y))
			}
			return nil, fmt.Errorf("can only concatenate str (not \"%s\") to str", TypeName(rv))
		case []any:
			if y, ok := rv.([]any); ok {
				if err := r.stepN(len(x) + len(y)); err != nil {
					return nil, err
				}
				return append(append(make([]any, 0, len(x)+len(y)), x...), y...), nil
			}
			return nil, fmt.Errorf("can only concatenate list (not \"%s\") to list", TypeName(rv))
		}
	case "*":
		seq, n := l, ri
		if !rInt {
			seq, n = rv, li
			if !lInt {
				break
			}
		}
		if n < 0 {
			n = 0
		}
		switch x := seq.(type) {
		case string:
			if int64(len(x))*n > int64(r.opts.MaxOutput) || (len(x) > 0 && n > int64(r.opts.MaxOutput)) {
				return nil, r.checkLen(r.opts.MaxOutput + 1)
			}
			return strings.Repeat(x, int(n)), nil
		case []any:
			if int64(len(x))*n > int64(r.opts.MaxOutput) || (len(x) > 0 && n > int64(r.opts.MaxOutput)) {
				return nil, r.checkLen(r.opts.MaxOutput + 1)
			}
			if err := r.stepN(len(x) * int(n)); err != nil {
				return nil, err
			}
			out := make([]any, 0, len(x)*int(n))
			for k := int64(0); k < n; k++ {
				out = append(out, x...)
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("unsupported operand type(s) for %s: '%s' and '%s'", op, TypeName(l), TypeName(rv))
}

func (r *renderer) evalSlice(e *sliceExpr, sc *scope) (any, error) {
	obj, err := r.eval(e.obj, sc)
	if err != nil {
		return nil, err
	}
	var idx [3]*int64
	for i, x := range []expr{e.start, e.stop, e.step} {
		if x == nil {
			continue
		}
		v, err := r.eval(x, sc)
		if err != nil {
			return nil, err
		}
		if v == nil || isUndefined(v) {
			continue
		}
		n, ok := toInt(v)
		if !ok {
			return nil, r.errf(x.position(), "slice indices must be integers or None, not %s", TypeName(v))
		}
		idx[i] = &n
	}
	if idx[2] != nil && *idx[2] == 0 {
		return nil, r.errf(e.pos, "slice step cannot be zero")
	}
	switch x := obj.(type) {
	case []any:
		return pySlice(x, idx), nil
	case string:
		rs := []rune(x)
		items := make([]any, len(rs))
		for i, c := range rs {
			items[i] = string(c)
		}
		var b strings.Builder
		for _, c := range pySlice(items, idx) {
			b.WriteString(c.(string))
		}
		return b.String(), nil
	case Undefined:
		return x, nil
	}
	return nil, r.errf(e.pos, "'%s' object is not subscriptable", TypeName(obj))
}

// pySlice is Python's seq[start:stop:step].
func pySlice(seq []any, idx [3]*int64) []any {
	n := int64(len(seq))
	step := int64(1)
	if idx[2] != nil {
		step = *idx[2]
	}
	clamp := func(p *int64, def, lo, hi int64) int64 {
		if p == nil {
			return def
		}
		v := *p
		if v < 0 {
			v += n
		}
		return max(lo, min(v, hi))
	}
	out := []any{}
	if step > 0 {
		start, stop := clamp(idx[0], 0, 0, n), clamp(idx[1], n, 0, n)
		for i := start; i < stop; i += step {
			out = append(out, seq[i])
		}
	} else {
		start, stop := clamp(idx[0], n-1, -1, n-1), clamp(idx[1], -1, -1, n-1)
		for i := start; i > stop; i += step {
			out = append(out, seq[i])
		}
	}
	return out
}

// getAttr is Jinja's environment.getattr: Python attributes (methods) first,
// then items.
func getAttr(obj any, name string) any {
	switch x := obj.(type) {
	case *Dict:
		if m := method(obj, name); m != nil {
			return m
		}
		if v, ok := x.m[name]; ok {
			return v
		}
	case *Namespace:
		if v, ok := x.d.m[name]; ok {
			return v
		}
	case *loopState:
		return x.attr(name)
	default:
		if m := method(obj, name); m != nil {
			return m
		}
	}
	return Undefined{name: name}
}

// getItem is Jinja's environment.getitem: items first, then attributes.
func getItem(obj, key any) any {
	switch x := obj.(type) {
	case *Dict:
		if k, ok := key.(string); ok {
			if v, ok := x.m[k]; ok {
				return v
			}
		}
	case []any:
		if i, ok := toInt(key); ok {
			if i < 0 {
				i += int64(len(x))
			}
			if i >= 0 && i < int64(len(x)) {
				return x[i]
			}
			return Undefined{}
		}
	case string:
		if i, ok := toInt(key); ok {
			rs := []rune(x)
			if i < 0 {
				i += int64(len(rs))
			}
			if i >= 0 && i < int64(len(rs)) {
				return string(rs[i])
			}
			return Undefined{}
		}
	}
	if k, ok := key.(string); ok {
		return getAttr(obj, k)
	}
	return Undefined{}
}

func (r *renderer) evalCall(e *callExpr, sc *scope) (any, error) {
	return r.evalCallWith(e, sc, nil)
}

// evalCallWith evaluates a call; caller, when set, is passed to the called
// macro as its "caller" variable (a {% call %} block).
func (r *renderer) evalCallWith(e *callExpr, sc *scope, caller *callable) (any, error) {
	fn, err := r.eval(e.fn, sc)
	if err != nil {
		return nil, err
	}
	args, err := r.evalList(e.args, sc)
	if err != nil {
		return nil, err
	}
	kw, err := r.evalKw(e.kwName, e.kwVals, sc)
	if err != nil {
		return nil, err
	}
	c, ok := fn.(*callable)
	if !ok {
		if u, isU := fn.(Undefined); isU {
			name := u.name
			if n, ok := e.fn.(*nameExpr); ok {
				name = n.name
				return nil, r.errf(e.pos, "unknown function '%s' (it is undefined)", name)
			}
			return nil, r.errf(e.pos, "'%s' is undefined and cannot be called", name)
		}
		return nil, r.errf(e.pos, "'%s' object is not callable", TypeName(fn))
	}
	r.caller = caller
	v, err := c.fn(r, args, kw)
	r.caller = nil
	if err != nil {
		var re *RaiseError
		if errors.As(err, &re) && re.Pos == (Pos{}) {
			re.Pos = e.pos
		}
		var le *LimitError
		var rend *RenderError
		if errors.As(err, &re) || errors.As(err, &le) || errors.As(err, &rend) {
			return nil, err
		}
		return nil, r.errf(e.pos, "%s(): %v", c.name, err)
	}
	return v, nil
}
