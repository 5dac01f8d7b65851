package grammar

import (
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// SchemaError is a JSON Schema the compiler refuses: unsupported keywords (named),
// invalid values, or constraints it cannot enforce exactly.
type SchemaError struct {
	Path    string // JSON pointer of the schema node ("#/properties/a")
	Keyword string // the keyword at fault, when one is
	Msg     string
}

func (e *SchemaError) Error() string {
	if e.Keyword != "" {
		return fmt.Sprintf("json schema at %s: %q %s", e.Path, e.Keyword, e.Msg)
	}
	return fmt.Sprintf("json schema at %s: %s", e.Path, e.Msg)
}

// Options tune grammar compilation.
type Options struct {
	// NoWhitespace allows no white space between JSON tokens (vLLM's
	// disable_any_whitespace). By default one space, or a newline followed by up to
	// MaxIndent spaces, may stand between tokens.
	NoWhitespace bool
	// MaxStates caps the automaton (DFA nodes over all rules); 0 means
	// DefaultMaxStates. A larger constraint is refused.
	MaxStates int
}

// MaxIndent is the most spaces after a newline between JSON tokens.
const MaxIndent = 16

// Keyword sets.
var (
	annotationKeywords = map[string]bool{
		"title": true, "description": true, "$comment": true, "examples": true, "default": true,
		"deprecated": true, "readOnly": true, "writeOnly": true, "$schema": true, "$id": true,
		"contentMediaType": true, "contentEncoding": true, "$defs": true, "definitions": true,
	}
	objectKeywords = map[string]bool{"properties": true, "required": true, "additionalProperties": true}
	arrayKeywords  = map[string]bool{"items": true, "minItems": true, "maxItems": true}
	stringKeywords = map[string]bool{"minLength": true, "maxLength": true, "pattern": true, "format": true}
	numberKeywords = map[string]bool{"minimum": true, "maximum": true, "exclusiveMinimum": true, "exclusiveMaximum": true}
	otherKeywords  = map[string]bool{"type": true, "enum": true, "const": true, "anyOf": true, "oneOf": true, "allOf": true, "$ref": true}
	// Known JSON Schema keywords the compiler does not enforce: refused by name.
	refusedKeywords = map[string]string{
		"not": "negation cannot be enforced by a grammar", "if": "conditional schemas are not supported",
		"then": "conditional schemas are not supported", "else": "conditional schemas are not supported",
		"patternProperties": "is not supported", "propertyNames": "is not supported",
		"minProperties": "is not supported", "maxProperties": "is not supported",
		"dependentRequired": "is not supported", "dependentSchemas": "is not supported", "dependencies": "is not supported",
		"unevaluatedProperties": "is not supported", "unevaluatedItems": "is not supported",
		"contains": "is not supported", "minContains": "is not supported", "maxContains": "is not supported",
		"uniqueItems": "is not supported", "multipleOf": "is not supported", "prefixItems": "is not supported",
		"additionalItems": "is not supported", "contentSchema": "is not supported", "$dynamicRef": "is not supported",
		"$recursiveRef": "is not supported", "$anchor": "is not supported (refer with JSON pointers)",
		"$dynamicAnchor": "is not supported", "$recursiveAnchor": "is not supported", "$vocabulary": "is not supported",
		"nullable": "is an OpenAPI keyword, not JSON Schema (write \"type\": [..., \"null\"])",
	}
	supportedFormats = map[string]string{
		"date":      `\d{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)`,
		"time":      `(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,6})?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)`,
		"date-time": "",
		"uuid":      `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`,
		"email":     `[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+`,
		"ipv4":      `(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}`,
	}
)

func init() {
	supportedFormats["date-time"] = supportedFormats["date"] + "T" + supportedFormats["time"]
}

// compiler turns JSON Schemas into rules of one builder.
type compiler struct {
	b         *builder
	a         *nfa
	opt       Options
	root      *jv
	objRule   int32 // generic JSON object, -1 until needed
	arrRule   int32
	refRule   map[*jv]int32 // recursive $ref targets, compiled as rules
	recursive map[*jv]bool
	inline    []*jv // $ref targets being inlined (cycle guard)
	pending   []func()
}

func newCompiler(opt Options) *compiler {
	b := newBuilder(opt.MaxStates)
	return &compiler{b: b, a: &b.a, opt: opt, objRule: -1, arrRule: -1, refRule: map[*jv]int32{}, recursive: map[*jv]bool{}}
}

func fail(path, kw, format string, args ...any) {
	panic(&SchemaError{Path: path, Keyword: kw, Msg: fmt.Sprintf(format, args...)})
}

// run catches compile panics.
func (c *compiler) run(f func() frag, desc string) (g *Grammar, err error) {
	defer func() {
		if r := recover(); r != nil {
			switch e := r.(type) {
			case *SchemaError:
				err = e
			case *RegexError:
				err = e
			case errTooLarge:
				err = fmt.Errorf("grammar too large: %s", e.what)
			default:
				panic(r)
			}
		}
	}()
	root := f()
	for len(c.pending) > 0 {
		p := c.pending[0]
		c.pending = c.pending[1:]
		p()
	}
	return c.b.finish(root, desc)
}

// JSONSchema compiles a JSON Schema (draft 2020-12 / draft-07 keywords; see the
// package documentation for what is supported) into a grammar whose outputs are JSON
// texts valid against it.
func JSONSchema(schema []byte, opt Options) (*Grammar, error) {
	root, err := parseJV(schema)
	if err != nil {
		return nil, &SchemaError{Path: "#", Msg: err.Error()}
	}
	c := newCompiler(opt)
	g, err := c.run(func() frag {
		c.setRoot(root)
		return c.value(root, "#")
	}, "json schema")
	if err != nil {
		if err == ErrEmpty {
			return nil, &SchemaError{Path: "#", Msg: "no JSON value satisfies this schema (within the limits Vireo generates)"}
		}
		if err == ErrLeftRecursion {
			return nil, &SchemaError{Path: "#", Keyword: "$ref", Msg: "recursion reaches the same schema again before any output (left recursion)"}
		}
		return nil, err
	}
	return g, nil
}

// JSONObject is any JSON object (OpenAI's response_format json_object).
func JSONObject(opt Options) (*Grammar, error) {
	c := newCompiler(opt)
	return c.run(func() frag { return c.a.call(c.genericObject()) }, "json object")
}

// Regex compiles an ECMAScript regex that the whole output must match.
func Regex(pattern string, opt Options) (*Grammar, error) {
	c := newCompiler(opt)
	g, err := c.run(func() frag {
		f, err := c.a.searchFrag(pattern, encRaw, true)
		if err != nil {
			panic(err)
		}
		return f
	}, "regex")
	if err == ErrEmpty {
		return nil, &RegexError{pattern, "matches nothing"}
	}
	return g, err
}

// Choice is exactly one of the given strings.
func Choice(choices []string, opt Options) (*Grammar, error) {
	if len(choices) == 0 {
		return nil, fmt.Errorf("grammar: no choices")
	}
	c := newCompiler(opt)
	return c.run(func() frag {
		var alts []frag
		for _, s := range choices {
			alts = append(alts, c.a.lit(s))
		}
		return c.a.alt(alts...)
	}, "choice")
}

// setRoot makes v the document $refs resolve against and finds the recursive ones.
func (c *compiler) setRoot(v *jv) {
	c.root = v
	state := map[*jv]int8{}
	var visit func(s *jv, path string)
	visit = func(s *jv, path string) {
		if s == nil || s.kind != 'o' {
			return
		}
		if ref := s.get("$ref"); ref != nil && ref.kind == 's' {
			t := c.resolve(ref.str, path)
			switch state[t] {
			case 1:
				c.recursive[t] = true
			case 0:
				state[t] = 1
				visit(t, ref.str)
				state[t] = 2
			}
		}
		for i, k := range s.keys {
			val := s.vals[i]
			switch k {
			case "properties":
				if val.kind == 'o' {
					for j, pk := range val.keys {
						visit(val.vals[j], path+"/properties/"+escapePointer(pk))
					}
				}
			case "additionalProperties", "items":
				visit(val, path+"/"+k)
			case "anyOf", "oneOf", "allOf":
				if val.kind == 'a' {
					for j, e := range val.arr {
						visit(e, fmt.Sprintf("%s/%s/%d", path, k, j))
					}
				}
			}
		}
	}
	state[v] = 1
	visit(v, "#")
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// resolve follows a local JSON pointer ("#", "#/$defs/x").
func (c *compiler) resolve(ref, path string) *jv {
	if !strings.HasPrefix(ref, "#") {
		fail(path, "$ref", "%q: only local references (#/...) are supported", ref)
	}
	p, err := url.PathUnescape(ref[1:])
	if err != nil {
		fail(path, "$ref", "%q: %v", ref, err)
	}
	cur := c.root
	if p == "" {
		return cur
	}
	if !strings.HasPrefix(p, "/") {
		fail(path, "$ref", "%q: only JSON pointers are supported (no $anchor names)", ref)
	}
	for _, tok := range strings.Split(p[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch cur.kind {
		case 'o':
			cur = cur.get(tok)
		case 'a':
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(cur.arr) {
				cur = nil
			} else {
				cur = cur.arr[i]
			}
		default:
			cur = nil
		}
		if cur == nil {
			fail(path, "$ref", "%q does not resolve", ref)
		}
	}
	return cur
}

// ws is the white space allowed between JSON tokens.
func (c *compiler) ws() frag {
	if c.opt.NoWhitespace {
		return c.a.empty()
	}
	a := c.a
	return a.opt(a.alt(a.lit(" "), a.seq(a.lit("\n"), a.repeat(func() frag { return a.lit(" ") }, 0, MaxIndent))))
}

// --- generic JSON ---

func (c *compiler) anyValue() frag {
	a := c.a
	return a.alt(a.call(c.genericObject()), a.call(c.genericArray()), c.genericString(), a.anyNumber(),
		a.lit("true"), a.lit("false"), a.lit("null"))
}

func (c *compiler) genericObject() int32 {
	if c.objRule < 0 {
		c.objRule = c.b.newRule()
		c.pending = append(c.pending, func() {
			a := c.a
			member := func() frag { return a.seq(c.genericString(), c.ws(), a.lit(":"), c.ws(), c.anyValue()) }
			body := a.opt(a.seq(c.ws(), member(), a.star(a.seq(c.ws(), a.lit(","), c.ws(), member()))))
			c.b.setRule(c.objRule, a.seq(a.lit("{"), body, c.ws(), a.lit("}")))
		})
	}
	return c.objRule
}

func (c *compiler) genericArray() int32 {
	if c.arrRule < 0 {
		c.arrRule = c.b.newRule()
		c.pending = append(c.pending, func() {
			a := c.a
			body := a.opt(a.seq(c.ws(), c.anyValue(), a.star(a.seq(c.ws(), a.lit(","), c.ws(), c.anyValue()))))
			c.b.setRule(c.arrRule, a.seq(a.lit("["), body, c.ws(), a.lit("]")))
		})
	}
	return c.arrRule
}

// genericString is any JSON string: unescaped characters (valid UTF-8, no controls)
// and every escape JSON has (\u escapes of surrogates excluded).
func (c *compiler) genericString() frag {
	a := c.a
	hex := func() frag { return a.set([2]byte{'0', '9'}, [2]byte{'a', 'f'}, [2]byte{'A', 'F'}) }
	nonSur := a.alt(
		a.seq(a.set([2]byte{'0', '9'}, [2]byte{'a', 'c'}, [2]byte{'A', 'C'}, [2]byte{'e', 'f'}, [2]byte{'E', 'F'}), hex(), hex(), hex()),
		a.seq(a.set([2]byte{'d', 'd'}, [2]byte{'D', 'D'}), a.rng('0', '7'), hex(), hex()))
	esc := a.seq(a.lit(`\`), a.alt(a.set([2]byte{'"', '"'}, [2]byte{'\\', '\\'}, [2]byte{'/', '/'}, [2]byte{'b', 'b'},
		[2]byte{'f', 'f'}, [2]byte{'n', 'n'}, [2]byte{'r', 'r'}, [2]byte{'t', 't'}), a.seq(a.lit("u"), nonSur)))
	plain := a.alt(a.utf8Range(0x20, 0x21)[0], a.alt(a.utf8Range(0x23, 0x5B)...), a.alt(a.utf8Range(0x5D, 0x10FFFF)...))
	return a.seq(a.lit(`"`), a.star(a.alt(plain, esc)), a.lit(`"`))
}

// --- schemas ---

// value compiles schema s (at path) inline.
func (c *compiler) value(s *jv, path string) frag {
	a := c.a
	switch s.kind {
	case 'b':
		if s.b {
			return c.anyValue()
		}
		return a.none()
	case 'o':
	default:
		fail(path, "", "a schema must be an object or a boolean")
	}
	present := map[string]bool{}
	for _, k := range s.keys {
		switch {
		case annotationKeywords[k] || strings.HasPrefix(k, "x-"):
		case objectKeywords[k] || arrayKeywords[k] || stringKeywords[k] || numberKeywords[k] || otherKeywords[k]:
			present[k] = true
		case refusedKeywords[k] != "":
			fail(path, k, "%s", refusedKeywords[k])
		default:
			fail(path, k, "is not a JSON Schema keyword Vireo knows (misspelt, or unsupported)")
		}
	}
	only := func(kw string, allowed ...string) {
		for k := range present {
			if k != kw && !slices.Contains(allowed, k) {
				fail(path, k, "cannot be combined with %q here", kw)
			}
		}
	}
	switch {
	case present["$ref"]:
		only("$ref")
		ref := s.get("$ref")
		if ref.kind != 's' {
			fail(path, "$ref", "must be a string")
		}
		t := c.resolve(ref.str, path)
		if c.recursive[t] {
			return a.call(c.refRuleFor(t, ref.str))
		}
		if slices.Contains(c.inline, t) {
			fail(path, "$ref", "reference cycle through %q", ref.str)
		}
		c.inline = append(c.inline, t)
		f := c.value(t, ref.str)
		c.inline = c.inline[:len(c.inline)-1]
		return f
	case present["allOf"]:
		only("allOf")
		l := s.get("allOf")
		if l.kind != 'a' || len(l.arr) != 1 {
			fail(path, "allOf", "is supported with exactly one subschema (merging schemas is not)")
		}
		return c.value(l.arr[0], path+"/allOf/0")
	case present["anyOf"] || present["oneOf"]:
		kw := "anyOf"
		if present["oneOf"] {
			kw = "oneOf"
		}
		only(kw)
		l := s.get(kw)
		if l.kind != 'a' || len(l.arr) == 0 {
			fail(path, kw, "must be a non-empty array of schemas")
		}
		if kw == "oneOf" {
			c.checkDisjoint(l.arr, path+"/oneOf")
		}
		var alts []frag
		for i, br := range l.arr {
			alts = append(alts, c.value(br, fmt.Sprintf("%s/%s/%d", path, kw, i)))
		}
		return a.alt(alts...)
	case present["enum"] || present["const"]:
		allowed := []string{"enum", "const", "type"}
		only("enum", allowed...)
		vals := c.literals(s, path)
		var alts []frag
		for _, v := range vals {
			alts = append(alts, a.lit(v.json()))
		}
		if len(alts) == 0 {
			return a.none()
		}
		return a.alt(alts...)
	}
	types := c.types(s, path, present)
	var alts []frag
	for _, t := range types {
		alts = append(alts, c.typed(s, t, path, present))
	}
	if len(alts) == 0 {
		return a.none()
	}
	return a.alt(alts...)
}

// refRuleFor compiles a recursive $ref target as a rule (once).
func (c *compiler) refRuleFor(t *jv, ref string) int32 {
	if r, ok := c.refRule[t]; ok {
		return r
	}
	r := c.b.newRule()
	c.refRule[t] = r
	c.pending = append(c.pending, func() { c.b.setRule(r, c.value(t, ref)) })
	return r
}

var allTypes = []string{"object", "array", "string", "number", "integer", "boolean", "null"}

// types lists the JSON types s allows (inferred from its keywords when "type" is
// absent; generating only those types is a subset of what the schema allows).
func (c *compiler) types(s *jv, path string, present map[string]bool) []string {
	t := s.get("type")
	if t == nil {
		var out []string
		has := func(kws map[string]bool) bool {
			for k := range kws {
				if present[k] {
					return true
				}
			}
			return false
		}
		if has(objectKeywords) {
			out = append(out, "object")
		}
		if has(arrayKeywords) {
			out = append(out, "array")
		}
		if has(stringKeywords) {
			out = append(out, "string")
		}
		if has(numberKeywords) {
			out = append(out, "number")
		}
		if len(out) == 0 {
			return []string{"any"}
		}
		return out
	}
	var names []string
	switch t.kind {
	case 's':
		names = []string{t.str}
	case 'a':
		for _, e := range t.arr {
			if e.kind != 's' {
				fail(path, "type", "must be a string or an array of strings")
			}
			names = append(names, e.str)
		}
	default:
		fail(path, "type", "must be a string or an array of strings")
	}
	for _, n := range names {
		if !slices.Contains(allTypes, n) {
			fail(path, "type", "%q is not a JSON Schema type", n)
		}
	}
	if slices.Contains(names, "number") && slices.Contains(names, "integer") {
		names = slices.DeleteFunc(names, func(s string) bool { return s == "integer" })
	}
	return names
}

func (c *compiler) typed(s *jv, t, path string, present map[string]bool) frag {
	a := c.a
	switch t {
	case "any":
		return c.anyValue()
	case "null":
		return a.lit("null")
	case "boolean":
		return a.alt(a.lit("true"), a.lit("false"))
	case "integer":
		return c.integer(s, path)
	case "number":
		return c.number(s, path)
	case "string":
		return c.str(s, path)
	case "array":
		return c.array(s, path)
	case "object":
		return c.object(s, path)
	}
	panic("unreachable")
}

// literals returns the enum/const values allowed (filtered by "type").
func (c *compiler) literals(s *jv, path string) []*jv {
	var vals []*jv
	if e := s.get("enum"); e != nil {
		if e.kind != 'a' {
			fail(path, "enum", "must be an array")
		}
		vals = e.arr
	}
	if k := s.get("const"); k != nil {
		if vals == nil {
			vals = []*jv{k}
		} else {
			var keep []*jv
			for _, v := range vals {
				if v.canonical() == k.canonical() {
					keep = append(keep, v)
				}
			}
			vals = keep
		}
	}
	if s.get("type") != nil {
		types := c.types(s, path, map[string]bool{})
		var keep []*jv
		for _, v := range vals {
			if slices.Contains(types, kindName(v)) || (kindName(v) == "integer" && slices.Contains(types, "number")) {
				keep = append(keep, v)
			}
		}
		vals = keep
	}
	return vals
}

// kindName is the JSON Schema type of a value ("integer" for integral numbers).
func kindName(v *jv) string {
	switch v.kind {
	case 'o':
		return "object"
	case 'a':
		return "array"
	case 's':
		return "string"
	case 'b':
		return "boolean"
	case 'z':
		return "null"
	}
	if r, ok := v.number(); ok && r.IsInt() {
		return "integer"
	}
	return "number"
}

func (c *compiler) bound(s *jv, kw, path string) *big.Rat {
	v := s.get(kw)
	if v == nil {
		return nil
	}
	if v.kind == 'b' {
		fail(path, kw, "as a boolean (draft-04) is not supported; give the bound as a number")
	}
	r, ok := v.number()
	if !ok {
		fail(path, kw, "must be a number")
	}
	return r
}

func (c *compiler) integer(s *jv, path string) frag {
	capv := new(big.Int).Sub(pow10(maxIntDigits), big.NewInt(1))
	lo, hi := new(big.Int).Neg(capv), new(big.Int).Set(capv)
	if r := c.bound(s, "minimum", path); r != nil {
		if x := ratCeil(r); x.Cmp(lo) > 0 {
			lo = x
		}
	}
	if r := c.bound(s, "exclusiveMinimum", path); r != nil {
		x := ratFloor(r)
		x.Add(x, big.NewInt(1))
		if x.Cmp(lo) > 0 {
			lo = x
		}
	}
	if r := c.bound(s, "maximum", path); r != nil {
		if x := ratFloor(r); x.Cmp(hi) < 0 {
			hi = x
		}
	}
	if r := c.bound(s, "exclusiveMaximum", path); r != nil {
		x := ratCeil(r)
		x.Sub(x, big.NewInt(1))
		if x.Cmp(hi) < 0 {
			hi = x
		}
	}
	if lo.Cmp(hi) > 0 {
		if lo.Cmp(capv) > 0 || new(big.Int).Neg(hi).Cmp(capv) > 0 {
			fail(path, "minimum", "integer bounds beyond ±(10^15-1) are not supported (Vireo generates integers of at most 15 digits)")
		}
		return c.a.none()
	}
	return c.a.intRange(lo, hi)
}

func (c *compiler) number(s *jv, path string) frag {
	bmin, xmin := c.bound(s, "minimum", path), c.bound(s, "exclusiveMinimum", path)
	bmax, xmax := c.bound(s, "maximum", path), c.bound(s, "exclusiveMaximum", path)
	if bmin == nil && xmin == nil && bmax == nil && xmax == nil {
		return c.a.anyNumber()
	}
	// Digits the bounds need.
	fb, ib := 0, 0
	for _, r := range []*big.Rat{bmin, xmin, bmax, xmax} {
		if r == nil {
			continue
		}
		fd := fracDigitsOf(r)
		if fd < 0 {
			fd = maxSigDigits + 1
		}
		fb, ib = max(fb, fd), max(ib, intDigitsOf(r))
	}
	F := min(max(defaultFracDig, fb), maxSigDigits-ib)
	if F < fb || F < 1 {
		kw := "minimum"
		for _, k := range []string{"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"} {
			if s.get(k) != nil {
				kw = k
				break
			}
		}
		fail(path, kw, "bounds on non-integer numbers are enforced exactly only with at most %d significant digits (integer and fraction digits together)", maxSigDigits)
	}
	unit := new(big.Rat).SetInt(pow10(F))
	capv := new(big.Int).Sub(pow10(maxSigDigits), big.NewInt(1)) // 10^(15-F) - 10^-F, scaled
	lo, hi := new(big.Int).Neg(capv), new(big.Int).Set(capv)
	scale := func(r *big.Rat) *big.Rat { return new(big.Rat).Mul(r, unit) }
	if bmin != nil {
		if x := ratCeil(scale(bmin)); x.Cmp(lo) > 0 {
			lo = x
		}
	}
	if xmin != nil {
		x := ratFloor(scale(xmin))
		x.Add(x, big.NewInt(1))
		if x.Cmp(lo) > 0 {
			lo = x
		}
	}
	if bmax != nil {
		if x := ratFloor(scale(bmax)); x.Cmp(hi) < 0 {
			hi = x
		}
	}
	if xmax != nil {
		x := ratCeil(scale(xmax))
		x.Sub(x, big.NewInt(1))
		if x.Cmp(hi) < 0 {
			hi = x
		}
	}
	return c.a.decRange(lo, hi, F)
}

func (c *compiler) count(s *jv, kw, path string) (int, bool) {
	v := s.get(kw)
	if v == nil {
		return 0, false
	}
	r, ok := v.number()
	if !ok || !r.IsInt() || r.Sign() < 0 || r.Num().BitLen() > 31 {
		fail(path, kw, "must be a non-negative integer")
	}
	return int(r.Num().Int64()), true
}

// maxCounted caps minLength/maxLength/minItems/maxItems (each counted position is
// automaton states).
const maxCounted = 4096

// str compiles a string schema: the quotes around a content automaton that is the
// intersection of the pattern, the format and the length bounds (in characters, as
// JSON Schema counts them: code points), each as the canonical JSON encoding.
func (c *compiler) str(s *jv, path string) frag {
	a := c.a
	minL, hasMin := c.count(s, "minLength", path)
	maxL, hasMax := c.count(s, "maxLength", path)
	pat, fmtName := s.get("pattern"), s.get("format")
	if !hasMin && !hasMax && pat == nil && fmtName == nil {
		return c.genericString()
	}
	if hasMax && maxL > maxCounted || minL > maxCounted {
		kw := "maxLength"
		if minL > maxCounted {
			kw = "minLength"
		}
		fail(path, kw, "above %d is not supported", maxCounted)
	}
	var parts []*dfa
	max := c.b.maxStates
	if pat != nil {
		if pat.kind != 's' {
			fail(path, "pattern", "must be a string")
		}
		f, err := a.searchFrag(pat.str, encJSON, false)
		if err != nil {
			fail(path, "pattern", "%v", err)
		}
		parts = append(parts, a.determinize(f, max))
	}
	if fmtName != nil {
		if fmtName.kind != 's' {
			fail(path, "format", "must be a string")
		}
		re, ok := supportedFormats[fmtName.str]
		if !ok {
			fail(path, "format", "%q is not supported (supported: date-time, date, time, uuid, email, ipv4)", fmtName.str)
		}
		f, err := a.searchFrag(re, encJSON, true)
		if err != nil {
			panic(err)
		}
		parts = append(parts, a.determinize(f, max))
	}
	if hasMin || hasMax {
		hi := -1
		if hasMax {
			hi = maxL
		}
		if hasMax && minL > maxL {
			return a.none()
		}
		var one *dfa
		f := a.repeat(func() frag {
			if one == nil {
				one = a.determinize(a.runes(anyChar, encJSON), max)
			}
			return a.embed(one)
		}, minL, hi)
		parts = append(parts, a.determinize(f, max))
	}
	content := parts[0].trim()
	for _, p := range parts[1:] {
		content = intersect(content, p, max)
	}
	if content.isEmpty() {
		return a.none()
	}
	return a.seq(a.lit(`"`), a.embed(content), a.lit(`"`))
}

// array compiles an array schema; items are counted by copies of the item automaton,
// or by calls into one rule when there are many copies of a large item.
func (c *compiler) array(s *jv, path string) frag {
	a := c.a
	minI, _ := c.count(s, "minItems", path)
	maxI, hasMax := c.count(s, "maxItems", path)
	if minI > maxCounted || hasMax && maxI > maxCounted {
		kw := "maxItems"
		if minI > maxCounted {
			kw = "minItems"
		}
		fail(path, kw, "above %d is not supported", maxCounted)
	}
	if hasMax && minI > maxI {
		return a.none()
	}
	items := s.get("items")
	if items != nil && items.kind == 'a' {
		fail(path, "items", "as an array (tuple validation) is not supported")
	}
	item := func() frag {
		if items == nil {
			return c.anyValue()
		}
		return c.value(items, path+"/items")
	}
	copies := minI
	if hasMax {
		copies = maxI
	}
	if copies > 2 {
		// Many positions: one rule for the item, a call per position.
		probe := len(a.eps)
		item()
		if len(a.eps)-probe > 64 {
			r := c.b.newRule()
			body := item
			c.pending = append(c.pending, func() { c.b.setRule(r, body()) })
			item = func() frag { return a.call(r) }
		}
	}
	open, close := a.lit("["), a.lit("]")
	if hasMax && maxI == 0 {
		return a.seq(open, c.ws(), close)
	}
	sepItem := func() frag { return a.seq(c.ws(), a.lit(","), c.ws(), item()) }
	rest := -1
	if hasMax {
		rest = maxI - 1
	}
	list := a.seq(c.ws(), item(), a.repeat(sepItem, max(minI-1, 0), rest), c.ws())
	if minI == 0 {
		return a.seq(open, a.alt(list, c.ws()), close)
	}
	return a.seq(open, list, close)
}

// object compiles an object schema: the declared properties in schema order
// (required ones always, optional ones possibly skipped), then additional properties
// when allowed. additionalProperties left unspecified generates none when properties
// are declared (a subset of what the schema allows), and any when none are.
func (c *compiler) object(s *jv, path string) frag {
	a := c.a
	props := s.get("properties")
	if props != nil && props.kind != 'o' {
		fail(path, "properties", "must be an object")
	}
	var required []string
	if r := s.get("required"); r != nil {
		if r.kind != 'a' {
			fail(path, "required", "must be an array of strings")
		}
		for _, e := range r.arr {
			if e.kind != 's' {
				fail(path, "required", "must be an array of strings")
			}
			if !slices.Contains(required, e.str) {
				required = append(required, e.str)
			}
		}
	}
	addl := s.get("additionalProperties")
	type prop struct {
		name string
		s    *jv
		path string
		req  bool
	}
	var ps []prop
	if props != nil {
		for i, k := range props.keys {
			ps = append(ps, prop{k, props.vals[i], path + "/properties/" + escapePointer(k), slices.Contains(required, k)})
		}
	}
	for _, r := range required {
		if props.get(r) == nil {
			switch {
			case addl == nil || addl.kind == 'b' && addl.b:
				ps = append(ps, prop{r, &jv{kind: 'b', b: true}, path + "/required", true})
			case addl.kind == 'b':
				return a.none() // required but forbidden
			default:
				ps = append(ps, prop{r, addl, path + "/additionalProperties", true})
			}
		}
	}
	extra := false
	var extraSchema *jv
	switch {
	case addl == nil:
		extra = len(ps) == 0
	case addl.kind == 'b':
		extra = addl.b
	case addl.kind == 'o':
		extra, extraSchema = true, addl
	default:
		fail(path, "additionalProperties", "must be a boolean or a schema")
	}
	if len(ps) == 0 && extra && extraSchema == nil {
		return a.call(c.genericObject())
	}
	start := a.state()
	pf, pm := start, a.state() // nothing emitted yet / something emitted
	for _, p := range ps {
		k := a.seq(a.lit(quote(p.name)), c.ws(), a.lit(":"), c.ws(), c.value(p.s, p.path))
		nf, nm := a.state(), a.state()
		first := c.ws()
		a.link(pf, first.s)
		a.link(first.e, k.s)
		comma := a.seq(c.ws(), a.lit(","), c.ws())
		a.link(pm, comma.s)
		a.link(comma.e, k.s)
		a.link(k.e, nm)
		if !p.req {
			a.link(pf, nf)
			a.link(pm, nm)
		}
		pf, pm = nf, nm
	}
	if extra {
		var names []string
		for _, p := range ps {
			names = append(names, p.name)
		}
		var val frag
		if extraSchema != nil {
			val = c.value(extraSchema, path+"/additionalProperties")
		} else {
			val = c.anyValue()
		}
		x := a.seq(c.extraKey(names), c.ws(), a.lit(":"), c.ws(), val)
		first := c.ws()
		a.link(pf, first.s)
		a.link(first.e, x.s)
		comma := a.seq(c.ws(), a.lit(","), c.ws())
		a.link(pm, comma.s)
		a.link(comma.e, x.s)
		a.link(x.e, pm)
	}
	closing := a.seq(c.ws(), a.lit("}"))
	a.link(pf, closing.s)
	a.link(pm, closing.s)
	return a.seq(a.lit("{"), frag{start, closing.e})
}

// extraKey is a property name other than the declared ones, without escapes beyond
// the required ones (so its text is its name).
func (c *compiler) extraKey(declared []string) frag {
	a := c.a
	max := c.b.maxStates
	key := a.determinize(a.seq(a.lit(`"`), a.star(a.runes(anyChar, encJSON)), a.lit(`"`)), max)
	if len(declared) == 0 {
		return a.embed(key)
	}
	var lits []frag
	for _, n := range declared {
		lits = append(lits, a.lit(quote(n)))
	}
	names := a.determinize(a.alt(lits...), max)
	return a.embed(intersect(key, names.complement(), max))
}

// --- oneOf ---

// JSON kinds, for the oneOf disjointness check.
const (
	kObject uint8 = 1 << iota
	kArray
	kString
	kInt
	kFrac
	kBool
	kNull
	kAll = kObject | kArray | kString | kInt | kFrac | kBool | kNull
)

// shape is what a schema can produce, conservatively: a set of kinds, and when known
// the exact set of values (enum/const).
type shape struct {
	kinds uint8
	lits  map[string]bool // canonical forms; nil when not restricted to literals
	node  *jv             // the schema (after $ref/allOf), for discriminators
}

func (c *compiler) shapeOf(s *jv, path string, depth int) shape {
	if depth > 32 {
		return shape{kinds: kAll}
	}
	switch s.kind {
	case 'b':
		if s.b {
			return shape{kinds: kAll}
		}
		return shape{}
	case 'o':
	default:
		return shape{kinds: kAll}
	}
	if ref := s.get("$ref"); ref != nil && ref.kind == 's' {
		return c.shapeOf(c.resolve(ref.str, path), ref.str, depth+1)
	}
	if l := s.get("allOf"); l != nil && l.kind == 'a' && len(l.arr) == 1 {
		return c.shapeOf(l.arr[0], path, depth+1)
	}
	for _, kw := range []string{"anyOf", "oneOf"} {
		if l := s.get(kw); l != nil && l.kind == 'a' {
			out := shape{lits: map[string]bool{}}
			for _, br := range l.arr {
				sh := c.shapeOf(br, path, depth+1)
				out.kinds |= sh.kinds
				if sh.lits == nil {
					out.lits = nil
				} else if out.lits != nil {
					for k := range sh.lits {
						out.lits[k] = true
					}
				}
			}
			return out
		}
	}
	if s.get("enum") != nil || s.get("const") != nil {
		out := shape{lits: map[string]bool{}, node: s}
		for _, v := range c.literals(s, path) {
			out.lits[v.canonical()] = true
			switch kindName(v) {
			case "object":
				out.kinds |= kObject
			case "array":
				out.kinds |= kArray
			case "string":
				out.kinds |= kString
			case "integer":
				out.kinds |= kInt
			case "number":
				out.kinds |= kFrac
			case "boolean":
				out.kinds |= kBool
			case "null":
				out.kinds |= kNull
			}
		}
		return out
	}
	present := map[string]bool{}
	for _, k := range s.keys {
		present[k] = true
	}
	out := shape{node: s}
	for _, t := range c.types(s, path, present) {
		switch t {
		case "any":
			out.kinds = kAll
		case "object":
			out.kinds |= kObject
		case "array":
			out.kinds |= kArray
		case "string":
			out.kinds |= kString
		case "integer":
			out.kinds |= kInt
		case "number":
			out.kinds |= kInt | kFrac
		case "boolean":
			out.kinds |= kBool
		case "null":
			out.kinds |= kNull
		}
	}
	return out
}

// checkDisjoint refuses a oneOf whose branches might both match one value: "exactly
// one" can only be guaranteed when they cannot (different kinds, different literal
// values, or objects told apart by a required property with different literals).
func (c *compiler) checkDisjoint(branches []*jv, path string) {
	shapes := make([]shape, len(branches))
	for i, br := range branches {
		shapes[i] = c.shapeOf(br, fmt.Sprintf("%s/%d", path, i), 0)
	}
	for i := range shapes {
		for j := i + 1; j < len(shapes); j++ {
			x, y := shapes[i], shapes[j]
			switch {
			case x.kinds&y.kinds == 0:
				continue
			case x.lits != nil && y.lits != nil && disjointSets(x.lits, y.lits):
				continue
			case x.kinds == kObject && y.kinds == kObject && c.discriminated(x.node, y.node, path):
				continue
			}
			fail(strings.TrimSuffix(path, "/oneOf"), "oneOf", "branches %d and %d may both match the same value, so \"exactly one\" cannot be enforced; Vireo enforces oneOf only when its branches are disjoint (different types, different enum/const values, or objects with a required property whose enum/const values differ) — use anyOf if both may match", i, j)
		}
	}
}

func disjointSets(a, b map[string]bool) bool {
	for k := range a {
		if b[k] {
			return false
		}
	}
	return true
}

// discriminated reports whether two object schemas share a required property whose
// literal values differ.
func (c *compiler) discriminated(x, y *jv, path string) bool {
	if x == nil || y == nil {
		return false
	}
	req := func(s *jv) []string {
		var out []string
		if r := s.get("required"); r != nil && r.kind == 'a' {
			for _, e := range r.arr {
				if e.kind == 's' {
					out = append(out, e.str)
				}
			}
		}
		return out
	}
	ry := req(y)
	for _, name := range req(x) {
		if !slices.Contains(ry, name) {
			continue
		}
		px, py := x.get("properties").get(name), y.get("properties").get(name)
		if px == nil || py == nil {
			continue
		}
		sx, sy := c.shapeOf(px, path, 1), c.shapeOf(py, path, 1)
		if sx.lits != nil && sy.lits != nil && disjointSets(sx.lits, sy.lits) {
			return true
		}
	}
	return false
}
