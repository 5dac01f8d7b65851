package jinja

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Template is a parsed template. It is safe for concurrent use.
type Template struct {
	src  string
	opts Options
	body []node
}

// Parse parses src with Jinja's default settings (trim_blocks and
// lstrip_blocks off). Syntax errors are *SyntaxError values naming line:col
// and what was expected.
func Parse(src string) (*Template, error) { return ParseOptions(src, Options{}) }

// ParseOptions parses src with the given settings.
func ParseOptions(src string, opts Options) (*Template, error) {
	if opts.MaxSteps <= 0 {
		opts.MaxSteps = DefaultMaxSteps
	}
	if opts.MaxOutput <= 0 {
		opts.MaxOutput = DefaultMaxOutput
	}
	toks, err := lex(src, opts)
	if err != nil {
		return nil, err
	}
	body, err := parseTemplate(toks)
	if err != nil {
		return nil, err
	}
	return &Template{src: src, opts: opts, body: body}, nil
}

// Source returns the template source.
func (t *Template) Source() string { return t.src }

// Render renders the template with ctx as its variables. Values may be Go
// scalars, slices, maps (keys are sorted: use *Dict or DecodeJSON to keep an
// order), *Dict. The globals range, namespace, dict,
// raise_exception and strftime_now are available unless ctx overrides them.
func (t *Template) Render(ctx map[string]any) (string, error) {
	r := &renderer{opts: t.opts}
	g := newScope(nil)
	for k, v := range builtinGlobals {
		g.vars[k] = v
	}
	for k, v := range ctx {
		if k == NowKey {
			if err := r.setNow(v); err != nil {
				return "", err
			}
		}
		g.vars[k] = toValue(v)
	}
	r.globals = g
	var b strings.Builder
	err := r.execBody(t.body, newScope(g), &b)
	switch {
	case err == errBreak || err == errContinue:
		return "", errors.New("jinja: break or continue outside a for loop")
	case err != nil:
		return "", err
	}
	return b.String(), nil
}

func (r *renderer) setNow(v any) error {
	switch x := v.(type) {
	case time.Time:
		r.now, r.hasNow = x, true
		return nil
	case string:
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
			if t, err := time.Parse(layout, x); err == nil {
				r.now, r.hasNow = t, true
				return nil
			}
		}
	}
	return fmt.Errorf("jinja: %s must be a time.Time or an RFC 3339 / 2006-01-02 string, got %v", NowKey, v)
}

// maxRange bounds range() results.
const maxRange = 1 << 20

// builtinGlobals are the functions every template may call.
var builtinGlobals = map[string]any{
	"range":           &callable{name: "range", fn: globalRange},
	"namespace":       &callable{name: "namespace", fn: globalNamespace},
	"dict":            &callable{name: "dict", fn: globalDict},
	"raise_exception": &callable{name: "raise_exception", fn: globalRaiseException},
	"strftime_now":    &callable{name: "strftime_now", fn: globalStrftimeNow},
}

func globalRange(r *renderer, args []any, _ *Dict) (any, error) {
	var start, stop, step int64 = 0, 0, 1
	ints := make([]int64, len(args))
	for i, a := range args {
		n, ok := toInt(a)
		if !ok {
			return nil, fmt.Errorf("'%s' object cannot be interpreted as an integer", TypeName(a))
		}
		ints[i] = n
	}
	switch len(ints) {
	case 1:
		stop = ints[0]
	case 2:
		start, stop = ints[0], ints[1]
	case 3:
		start, stop, step = ints[0], ints[1], ints[2]
	default:
		return nil, fmt.Errorf("expected 1 to 3 arguments, got %d", len(args))
	}
	if step == 0 {
		return nil, errors.New("arg 3 must not be zero")
	}
	n := (float64(stop) - float64(start)) / float64(step)
	if n > maxRange {
		return nil, &LimitError{Msg: fmt.Sprintf("range() of %.0f items exceeds the limit of %d", math.Ceil(n), maxRange)}
	}
	if err := r.stepN(int(max(n, 0))); err != nil {
		return nil, err
	}
	out := []any{}
	for i := start; (step > 0 && i < stop) || (step < 0 && i > stop); i += step {
		out = append(out, i)
	}
	return out, nil
}

func globalNamespace(_ *renderer, args []any, kw *Dict) (any, error) {
	d := NewDict()
	if len(args) > 1 {
		return nil, fmt.Errorf("expected at most 1 positional argument, got %d", len(args))
	}
	if len(args) == 1 {
		src, ok := args[0].(*Dict)
		if !ok {
			return nil, fmt.Errorf("positional argument must be a mapping, not %s", TypeName(args[0]))
		}
		d = src.clone()
	}
	if kw != nil {
		for _, k := range kw.keys {
			d.set(k, kw.m[k])
		}
	}
	return &Namespace{d: d}, nil
}

func globalDict(_ *renderer, args []any, kw *Dict) (any, error) {
	d := NewDict()
	if len(args) == 1 {
		if src, ok := args[0].(*Dict); ok {
			d = src.clone()
		}
	}
	if kw != nil {
		for _, k := range kw.keys {
			d.set(k, kw.m[k])
		}
	}
	return d, nil
}

func globalRaiseException(_ *renderer, args []any, _ *Dict) (any, error) {
	msg := ""
	if len(args) > 0 {
		msg = toStr(args[0])
	}
	return nil, &RaiseError{Message: msg}
}

func globalStrftimeNow(r *renderer, args []any, _ *Dict) (any, error) {
	if len(args) != 1 {
		return nil, errors.New("takes exactly one format argument")
	}
	f, ok := args[0].(string)
	if !ok {
		return nil, errors.New("format must be a string")
	}
	now := r.now
	if !r.hasNow {
		now = time.Now()
	}
	return strftime(now, f), nil
}

// strftime implements the common C/Python strftime directives.
func strftime(t time.Time, f string) string {
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		if f[i] != '%' || i+1 >= len(f) {
			b.WriteByte(f[i])
			continue
		}
		i++
		switch f[i] {
		case 'Y':
			fmt.Fprintf(&b, "%d", t.Year())
		case 'y':
			fmt.Fprintf(&b, "%02d", t.Year()%100)
		case 'm':
			fmt.Fprintf(&b, "%02d", int(t.Month()))
		case 'd':
			fmt.Fprintf(&b, "%02d", t.Day())
		case 'e':
			fmt.Fprintf(&b, "%2d", t.Day())
		case 'H':
			fmt.Fprintf(&b, "%02d", t.Hour())
		case 'I':
			h := t.Hour() % 12
			if h == 0 {
				h = 12
			}
			fmt.Fprintf(&b, "%02d", h)
		case 'M':
			fmt.Fprintf(&b, "%02d", t.Minute())
		case 'S':
			fmt.Fprintf(&b, "%02d", t.Second())
		case 'p':
			if t.Hour() < 12 {
				b.WriteString("AM")
			} else {
				b.WriteString("PM")
			}
		case 'b', 'h':
			b.WriteString(t.Month().String()[:3])
		case 'B':
			b.WriteString(t.Month().String())
		case 'a':
			b.WriteString(t.Weekday().String()[:3])
		case 'A':
			b.WriteString(t.Weekday().String())
		case 'j':
			fmt.Fprintf(&b, "%03d", t.YearDay())
		case 'w':
			fmt.Fprintf(&b, "%d", int(t.Weekday()))
		case 'Z':
			name, _ := t.Zone()
			b.WriteString(name)
		case 'z':
			b.WriteString(t.Format("-0700"))
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(f[i])
		}
	}
	return b.String()
}
