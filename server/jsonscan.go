package server

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// A small scanner over JSON that encoding/json has already accepted, for what
// encoding/json does not do: match field names exactly (it folds case, so
// "MAX_TOKENS" would set max_tokens, unlike OpenAI and vLLM), and look at huge arrays
// without building them.

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index just past the JSON value starting at b[i] (valid JSON).
// Nesting is tracked with a counter, so depth costs nothing.
func skipValue(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch c := b[i]; c {
		case '"':
			i = skipString(b, i)
		case '{', '[':
			depth++
			i++
		case '}', ']':
			depth--
			i++
		case ',', ':', ' ', '\t', '\n', '\r':
			i++
		default: // a number or a literal
			for i < len(b) && !strings.ContainsRune(",]} \t\n\r", rune(b[i])) {
				i++
			}
		}
		if depth == 0 {
			return i
		}
	}
	return i
}

// skipString returns the index just past the string starting at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// objectKeys calls f for each key of the object at b[i] with the index of the key's
// opening quote and of its value.
func objectKeys(b []byte, i int, f func(key string, k, v int) *apiError) *apiError {
	i = skipWS(b, i)
	if i >= len(b) || b[i] != '{' {
		return nil
	}
	i = skipWS(b, i+1)
	for i < len(b) && b[i] == '"' {
		end := skipString(b, i)
		raw := b[i:end]
		key := string(raw[1 : len(raw)-1])
		if strings.IndexByte(key, '\\') >= 0 {
			json.Unmarshal(raw, &key) // escapes, as encoding/json reads them
		}
		v := skipWS(b, skipWS(b, end)+1) // past the colon
		if e := f(key, i, v); e != nil {
			return e
		}
		i = skipWS(b, skipValue(b, v))
		if i < len(b) && b[i] == ',' {
			i = skipWS(b, i+1)
		}
	}
	return nil
}

// fieldSet is the JSON names of a struct's fields (embedded structs flattened) and the
// types behind them.
type fieldSet map[string]reflect.Type

var fieldSets sync.Map // reflect.Type -> fieldSet

// folds says whether encoding/json would take key for one of the fields: it matches
// names under Unicode case folding, as strings.EqualFold does (the Kelvin sign is a k).
func (fs fieldSet) folds(key string) bool {
	for name := range fs {
		if strings.EqualFold(name, key) {
			return true
		}
	}
	return false
}

func fieldsOf(t reflect.Type) fieldSet {
	if fs, ok := fieldSets.Load(t); ok {
		return fs.(fieldSet)
	}
	fs := fieldSet{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		switch {
		case name == "-":
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			for k, v := range fieldsOf(f.Type) {
				fs[k] = v
			}
		case f.IsExported():
			if name == "" {
				name = f.Name
			}
			fs[name] = f.Type
		}
	}
	fieldSets.Store(t, fs)
	return fs
}

var rawMessageType = reflect.TypeOf(json.RawMessage(nil))

// checkKeys notes in ig, under their paths, the object keys in b[i:] (valid JSON) that
// the Go type t has no field for under exactly that name: unknown fields are ignored,
// as vLLM ignores them (since its PR #10463), and only logged. A key that differs from
// a field's name only in case ("MAX_TOKENS") is unknown too, but encoding/json would
// set the field from it, so checkKeys overwrites that key's bytes in b with '~' (a
// name no field has, the JSON still valid): decode b after checkKeys. It follows t into
// nested structs and slices of structs; json.RawMessage fields are the caller's to
// check.
func checkKeys(b []byte, i int, t reflect.Type, path string, ig *ignored) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	i = skipWS(b, i)
	if i >= len(b) {
		return
	}
	switch {
	case t == rawMessageType:
		return
	case t.Kind() == reflect.Slice && b[i] == '[':
		elem := t.Elem()
		for elem.Kind() == reflect.Pointer {
			elem = elem.Elem()
		}
		if elem.Kind() != reflect.Struct {
			return
		}
		i = skipWS(b, i+1)
		for n := 0; i < len(b) && b[i] != ']'; n++ {
			checkKeys(b, i, elem, fmt.Sprintf("%s[%d]", path, n), ig)
			i = skipWS(b, skipValue(b, i))
			if i < len(b) && b[i] == ',' {
				i = skipWS(b, i+1)
			}
		}
		return
	case t.Kind() != reflect.Struct || b[i] != '{':
		return
	}
	fs := fieldsOf(t)
	objectKeys(b, i, func(key string, k, v int) *apiError {
		at := key
		if path != "" {
			at = path + "." + key
		}
		ft, ok := fs[key]
		if !ok {
			ig.add(at)
			if fs.folds(key) {
				for j := k + 1; j < skipString(b, k)-1; j++ {
					b[j] = '~'
				}
			}
			return nil
		}
		checkKeys(b, v, ft, at, ig)
		return nil
	})
}

// ignored collects the unknown fields of one request, for the log: at most
// maxIgnoredNames names, each clipped to maxIgnoredName bytes, and a count of the rest,
// so that a body of a million unknown keys costs no more than its bytes.
type ignored struct {
	names []string
	more  int
}

const (
	maxIgnoredNames = 8
	maxIgnoredName  = 64
)

func (ig *ignored) add(path string) {
	if ig == nil {
		return
	}
	if len(ig.names) >= maxIgnoredNames {
		ig.more++
		return
	}
	ig.names = append(ig.names, clipTo(path, maxIgnoredName))
}
