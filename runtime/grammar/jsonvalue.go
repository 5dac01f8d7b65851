package grammar

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"sort"
	"strings"
)

// jv is a JSON value that keeps the order of object keys (a schema's property order
// is the order outputs are generated in).
type jv struct {
	kind byte   // 'o' object, 'a' array, 's' string, 'n' number, 'b' boolean, 'z' null
	str  string // string value, or a number's text
	b    bool
	arr  []*jv
	keys []string
	vals []*jv
}

const maxJSONDepth = 128

func parseJV(data []byte) (*jv, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	v, err := readJV(d, 0)
	if err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("invalid JSON: data after the top-level value")
	}
	return v, nil
}

func readJV(d *json.Decoder, depth int) (*jv, error) {
	if depth > maxJSONDepth {
		return nil, fmt.Errorf("JSON nested deeper than %d levels", maxJSONDepth)
	}
	t, err := d.Token()
	if err != nil {
		if err == io.EOF {
			return nil, errors.New("invalid JSON: unexpected end")
		}
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	switch x := t.(type) {
	case json.Delim:
		switch x {
		case '{':
			v := &jv{kind: 'o'}
			for d.More() {
				kt, err := d.Token()
				if err != nil {
					return nil, fmt.Errorf("invalid JSON: %v", err)
				}
				k, _ := kt.(string)
				val, err := readJV(d, depth+1)
				if err != nil {
					return nil, err
				}
				if i := slices.Index(v.keys, k); i >= 0 {
					v.vals[i] = val // the last duplicate wins, as in JSON.parse
					continue
				}
				v.keys = append(v.keys, k)
				v.vals = append(v.vals, val)
			}
			if _, err := d.Token(); err != nil {
				return nil, fmt.Errorf("invalid JSON: %v", err)
			}
			return v, nil
		case '[':
			v := &jv{kind: 'a'}
			for d.More() {
				e, err := readJV(d, depth+1)
				if err != nil {
					return nil, err
				}
				v.arr = append(v.arr, e)
			}
			if _, err := d.Token(); err != nil {
				return nil, fmt.Errorf("invalid JSON: %v", err)
			}
			return v, nil
		}
	case string:
		return &jv{kind: 's', str: x}, nil
	case json.Number:
		return &jv{kind: 'n', str: string(x)}, nil
	case bool:
		return &jv{kind: 'b', b: x}, nil
	case nil:
		return &jv{kind: 'z'}, nil
	}
	return nil, fmt.Errorf("invalid JSON: unexpected %v", t)
}

func (v *jv) get(k string) *jv {
	if v == nil || v.kind != 'o' {
		return nil
	}
	if i := slices.Index(v.keys, k); i >= 0 {
		return v.vals[i]
	}
	return nil
}

// encode writes v as compact JSON (keys in their order, no HTML escaping).
func (v *jv) encode(b *strings.Builder) {
	switch v.kind {
	case 'o':
		b.WriteByte('{')
		for i, k := range v.keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(quote(k))
			b.WriteByte(':')
			v.vals[i].encode(b)
		}
		b.WriteByte('}')
	case 'a':
		b.WriteByte('[')
		for i, e := range v.arr {
			if i > 0 {
				b.WriteByte(',')
			}
			e.encode(b)
		}
		b.WriteByte(']')
	case 's':
		b.WriteString(quote(v.str))
	case 'n':
		b.WriteString(v.str)
	case 'b':
		if v.b {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	default:
		b.WriteString("null")
	}
}

func (v *jv) json() string {
	var b strings.Builder
	v.encode(&b)
	return b.String()
}

// canonical is a form equal for deep-equal values (keys sorted, numbers by value).
func (v *jv) canonical() string {
	var b strings.Builder
	var walk func(v *jv)
	walk = func(v *jv) {
		switch v.kind {
		case 'o':
			idx := make([]int, len(v.keys))
			for i := range idx {
				idx[i] = i
			}
			sort.Slice(idx, func(i, j int) bool { return v.keys[idx[i]] < v.keys[idx[j]] })
			b.WriteByte('{')
			for _, i := range idx {
				b.WriteString(quote(v.keys[i]))
				b.WriteByte(':')
				walk(v.vals[i])
				b.WriteByte(',')
			}
			b.WriteByte('}')
		case 'a':
			b.WriteByte('[')
			for _, e := range v.arr {
				walk(e)
				b.WriteByte(',')
			}
			b.WriteByte(']')
		case 'n':
			if r, ok := new(big.Rat).SetString(v.str); ok {
				b.WriteString("n" + r.RatString())
			} else {
				b.WriteString("n" + v.str)
			}
		default:
			v.encode(&b)
		}
	}
	walk(v)
	return b.String()
}

// quote is a JSON string literal with only the escapes JSON requires.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\' || r < 0x20:
			b.WriteString(jsonEscape(r))
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// number parses a JSON number's text exactly.
func (v *jv) number() (*big.Rat, bool) {
	if v == nil || v.kind != 'n' {
		return nil, false
	}
	return new(big.Rat).SetString(v.str)
}
