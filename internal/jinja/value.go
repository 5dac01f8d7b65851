package jinja

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Template values are plain Go values:
//
//	nil            none
//	bool           boolean
//	int64          integer
//	float64        float
//	string         string
//	[]any          list (tuples are lists too)
//	*Dict          mapping with insertion-ordered keys
//	*Namespace     the result of namespace(...)
//	Undefined      a missing variable, attribute or item
//	*loopState     the loop variable inside a for block
//	callable       a global function, macro or bound method
//
// Context values handed to Render are converted to these with toValue.

// Undefined is the value of a missing variable, attribute or item. It renders
// as the empty string, is falsy and iterates as an empty sequence (Jinja's
// default Undefined, which is what Hugging Face uses).
type Undefined struct{ name string }

// Dict is a mapping whose keys keep their insertion order, so tojson and
// items() are deterministic and follow the order the caller gave. Use NewDict
// and Set to build one, or DecodeJSON to read JSON without losing key order.
type Dict struct {
	keys []string
	m    map[string]any
}

// NewDict returns an empty Dict.
func NewDict() *Dict { return &Dict{m: map[string]any{}} }

// Set stores v (converted to a template value) under k, keeping the position of
// an existing key. It returns d so calls can be chained.
func (d *Dict) Set(k string, v any) *Dict {
	d.set(k, toValue(v))
	return d
}

func (d *Dict) set(k string, v any) {
	if _, ok := d.m[k]; !ok {
		d.keys = append(d.keys, k)
	}
	d.m[k] = v
}

// Get returns the value stored under k.
func (d *Dict) Get(k string) (any, bool) {
	v, ok := d.m[k]
	return v, ok
}

// Keys returns the keys in insertion order.
func (d *Dict) Keys() []string { return append([]string(nil), d.keys...) }

// Len returns the number of keys.
func (d *Dict) Len() int { return len(d.keys) }

func (d *Dict) clone() *Dict {
	c := &Dict{keys: append([]string(nil), d.keys...), m: make(map[string]any, len(d.m))}
	for k, v := range d.m {
		c.m[k] = v
	}
	return c
}

// Namespace is the mutable object namespace(...) returns; {% set ns.x = v %}
// assigns to it from any scope.
type Namespace struct{ d *Dict }

// callable is anything a template can call: globals, macros, bound methods.
type callable struct {
	name string
	fn   func(r *renderer, args []any, kw *Dict) (any, error)
}

// toValue converts a Go value from the caller's context into a template value.
func toValue(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case bool, int64, float64, string, *Dict, *Namespace, Undefined, *callable, *loopState:
		return x
	case int:
		return int64(x)
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case uint:
		return int64(x)
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case uint64:
		return int64(x)
	case float32:
		return float64(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = toValue(e)
		}
		return out
	case []string:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = e
		}
		return out
	case map[string]any:
		return sortedDict(reflect.ValueOf(x))
	case map[string]string:
		return sortedDict(reflect.ValueOf(x))
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = toValue(rv.Index(i).Interface())
		}
		return out
	case reflect.Map:
		if rv.Type().Key().Kind() == reflect.String {
			return sortedDict(rv)
		}
	case reflect.Pointer:
		if rv.IsNil() {
			return nil
		}
		return toValue(rv.Elem().Interface())
	case reflect.String:
		return rv.String()
	case reflect.Bool:
		return rv.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return int64(rv.Uint())
	case reflect.Float32, reflect.Float64:
		return rv.Float()
	}
	// Anything else is shown by its Go formatting rather than failing the render.
	return fmt.Sprint(v)
}

// sortedDict converts a Go map (unordered) into a Dict with sorted keys so the
// result is deterministic.
func sortedDict(rv reflect.Value) *Dict {
	keys := make([]string, 0, rv.Len())
	for _, k := range rv.MapKeys() {
		keys = append(keys, k.String())
	}
	sort.Strings(keys)
	d := NewDict()
	for _, k := range keys {
		d.set(k, toValue(rv.MapIndex(reflect.ValueOf(k).Convert(rv.Type().Key())).Interface()))
	}
	return d
}

func isUndefined(v any) bool { _, ok := v.(Undefined); return ok }

// truthy is Python truthiness.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil, Undefined:
		return false
	case bool:
		return x
	case int64:
		return x != 0
	case float64:
		return x != 0
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case *Dict:
		return x.Len() > 0
	}
	return true
}

// TypeName names a template value's type the way Python would in error messages.
func TypeName(v any) string {
	switch v.(type) {
	case nil:
		return "NoneType"
	case Undefined:
		return "Undefined"
	case bool:
		return "bool"
	case int64:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []any:
		return "list"
	case *Dict:
		return "dict"
	case *Namespace:
		return "Namespace"
	case *loopState:
		return "LoopContext"
	case *callable:
		return "function"
	}
	return fmt.Sprintf("%T", v)
}

// toStr is Python's str() as Jinja applies it when printing a value.
func toStr(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case Undefined:
		return ""
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return pyFloat(x)
	}
	var b strings.Builder
	writeRepr(&b, v, 0)
	return b.String()
}

// pyFloat formats f like Python's repr(float).
func pyFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	if f == 0 {
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64)
	exp, _ := strconv.Atoi(e[strings.IndexByte(e, 'e')+1:])
	if exp < -4 || exp >= 16 {
		return e // Go's shortest 'e' form matches Python's repr: 1e+16, 1.5e-05
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}

// writeRepr writes Python's repr() of v.
func writeRepr(b *strings.Builder, v any, depth int) {
	if depth > 100 {
		b.WriteString("...")
		return
	}
	switch x := v.(type) {
	case string:
		b.WriteString(pyRepr(x))
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			writeRepr(b, e, depth+1)
		}
		b.WriteByte(']')
	case *Dict:
		b.WriteByte('{')
		for i, k := range x.keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(pyRepr(k))
			b.WriteString(": ")
			writeRepr(b, x.m[k], depth+1)
		}
		b.WriteByte('}')
	case *Namespace:
		b.WriteString("<Namespace ")
		writeRepr(b, x.d, depth+1)
		b.WriteString(">")
	case *loopState:
		b.WriteString("<LoopContext>")
	case *callable:
		b.WriteString("<function " + x.name + ">")
	default:
		b.WriteString(toStr(v))
	}
}

// pyRepr quotes s the way Python's repr(str) does.
func pyRepr(s string) string {
	q := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == rune(q) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			fmt.Fprintf(&b, `\x%02x`, r)
		case r == utf8.RuneError:
			b.WriteString(`\ufffd`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
	return b.String()
}

// toNumber returns the numeric value of an int, float or bool.
func toNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// toInt returns the integer value of an int or bool.
func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// equal is Python ==.
func equal(a, b any) bool {
	return equalDepth(a, b, 0)
}

func equalDepth(a, b any, depth int) bool {
	if depth > 100 {
		return false
	}
	if x, ok := toNumber(a); ok {
		if y, ok := toNumber(b); ok {
			if ai, ok := toInt(a); ok {
				if bi, ok := toInt(b); ok {
					return ai == bi
				}
			}
			return x == y
		}
		return false
	}
	switch x := a.(type) {
	case nil:
		return b == nil
	case Undefined:
		return isUndefined(b)
	case string:
		y, ok := b.(string)
		return ok && x == y
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalDepth(x[i], y[i], depth+1) {
				return false
			}
		}
		return true
	case *Dict:
		y, ok := b.(*Dict)
		if !ok || x.Len() != y.Len() {
			return false
		}
		for _, k := range x.keys {
			yv, ok := y.m[k]
			if !ok || !equalDepth(x.m[k], yv, depth+1) {
				return false
			}
		}
		return true
	}
	return a == b
}

// compare orders a and b for <, <=, >, >= and sort; it fails like Python does
// for values that have no order.
func compare(a, b any) (int, error) {
	if x, ok := toNumber(a); ok {
		if y, ok := toNumber(b); ok {
			switch {
			case x < y:
				return -1, nil
			case x > y:
				return 1, nil
			}
			return 0, nil
		}
	}
	switch x := a.(type) {
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y), nil
		}
	case []any:
		if y, ok := b.([]any); ok {
			for i := 0; i < len(x) && i < len(y); i++ {
				if equal(x[i], y[i]) {
					continue
				}
				return compare(x[i], y[i])
			}
			switch {
			case len(x) < len(y):
				return -1, nil
			case len(x) > len(y):
				return 1, nil
			}
			return 0, nil
		}
	}
	return 0, fmt.Errorf("comparison not supported between instances of '%s' and '%s'", TypeName(a), TypeName(b))
}

// iterate returns the items a for loop or filter walks over: list items,
// dict keys, string characters; undefined is empty, anything else fails like
// Python's iter().
func iterate(v any) ([]any, error) {
	switch x := v.(type) {
	case []any:
		return x, nil
	case *Dict:
		out := make([]any, len(x.keys))
		for i, k := range x.keys {
			out[i] = k
		}
		return out, nil
	case string:
		out := make([]any, 0, len(x))
		for _, r := range x {
			out = append(out, string(r))
		}
		return out, nil
	case Undefined:
		return nil, nil
	}
	return nil, fmt.Errorf("'%s' object is not iterable", TypeName(v))
}
