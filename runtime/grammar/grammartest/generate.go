package grammartest

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
)

// Random returns n JSON Schemas from a randomized generator (deterministic for a seed):
// random nesting of every supported keyword — types and type unions, properties,
// required, additionalProperties (false, true, a schema, absent), enum and const with
// any JSON values, items with minItems/maxItems, anyOf, oneOf (disjoint branches: the
// only oneOf that can be enforced exactly), allOf of one schema, $ref into $defs
// (recursive ones included, always in an optional position so that the schema stays
// finite), string patterns, lengths and formats, integer and number bounds (inclusive
// and exclusive), annotations. Sizes are kept so that the shortest valid instance fits
// easily in a few hundred tokens.
func Random(seed uint64, n int) []string {
	var out []string
	for i := 0; i < n; i++ {
		g := &gen{rng: rand.New(rand.NewPCG(seed, uint64(i)))}
		root := g.schema(0, true)
		if len(g.defs) > 0 {
			// A shallow copy: the root map may also appear inside a definition.
			m := map[string]any{}
			if r, ok := root.(map[string]any); ok {
				maps.Copy(m, r)
			} else {
				m["allOf"] = []any{root}
			}
			defs := map[string]any{}
			maps.Copy(defs, g.defs)
			m["$defs"] = defs
			root = m
		}
		b, err := json.Marshal(root)
		if err != nil {
			panic(err)
		}
		out = append(out, string(b))
	}
	return out
}

type gen struct {
	rng  *rand.Rand
	defs map[string]any
}

var (
	propNames = []string{"id", "name", "value", "items", "a", "b", "kind", "x y", "ünï", `q"t`, `b\s`, "", "count", "tags", "meta", "ok"}
	patterns  = []string{`^[a-z]+$`, `^[A-Z][a-z]*$`, `^\d{2,4}$`, `^(ab|cd)+$`, `x`, `^[a-f0-9]{4}$`, `^\w+(-\w+)?$`, `^[^,]*$`, `\.$`, `^(yes|no)$`, `^a.c$`, `^\S+$`}
	formats   = []string{"date", "time", "date-time", "uuid", "email", "ipv4"}
	strLits   = []string{"", "a", "hello", "quote\"", "back\\", "line\nbreak", "tab\t", "é", "日本", "🙂", "\u0001"}
)

func (g *gen) pick(n int) int { return g.rng.IntN(n) }

func (g *gen) chance(p float64) bool { return g.rng.Float64() < p }

// literal is a random JSON value for enum/const.
func (g *gen) literal(depth int) any {
	switch k := g.pick(8); {
	case k == 0:
		return nil
	case k == 1:
		return g.chance(0.5)
	case k == 2:
		return g.rng.IntN(2001) - 1000
	case k == 3:
		return float64(g.rng.IntN(20001)-10000) / 100
	case k <= 5 || depth > 1:
		return strLits[g.pick(len(strLits))]
	case k == 6:
		var a []any
		for i := g.pick(3); i > 0; i-- {
			a = append(a, g.literal(depth+1))
		}
		return a
	default:
		m := map[string]any{}
		for i := g.pick(3); i > 0; i-- {
			m[propNames[g.pick(len(propNames))]] = g.literal(depth + 1)
		}
		return m
	}
}

// schema returns a random schema; optional marks a position that may be absent or
// empty in an instance (where a recursive $ref may go).
func (g *gen) schema(depth int, optional bool) any {
	if depth >= 3 {
		return g.scalar()
	}
	w := g.pick(20)
	switch {
	case w < 5:
		return g.scalar()
	case w < 9:
		return g.object(depth)
	case w < 12:
		return g.array(depth)
	case w == 12:
		return map[string]any{"enum": g.enumValues()}
	case w == 13:
		return map[string]any{"const": g.literal(0)}
	case w == 14:
		var br []any
		for i := 2 + g.pick(2); i > 0; i-- {
			br = append(br, g.schema(depth+1, optional))
		}
		return map[string]any{"anyOf": br}
	case w == 15:
		return g.oneOf(depth)
	case w == 16:
		return map[string]any{"allOf": []any{g.schema(depth+1, optional)}, "description": "wrapped"}
	case w == 17 && optional:
		return g.recursiveRef(depth)
	case w <= 17:
		return g.ref(depth)
	case w == 18:
		types := []string{"string", "integer", "number", "boolean", "null"}
		i, j := g.pick(5), g.pick(5)
		if i == j {
			j = (j + 1) % 5
		}
		return map[string]any{"type": []any{types[i], types[j]}}
	default:
		if g.chance(0.5) {
			return true
		}
		return map[string]any{"title": "anything"}
	}
}

func (g *gen) enumValues() []any {
	var vals []any
	seen := map[string]bool{}
	for i := 1 + g.pick(4); i > 0; i-- {
		v := g.literal(0)
		b, _ := json.Marshal(v)
		if !seen[string(b)] {
			seen[string(b)] = true
			vals = append(vals, v)
		}
	}
	return vals
}

func (g *gen) scalar() any {
	switch g.pick(6) {
	case 0:
		return g.str()
	case 1:
		return g.integer()
	case 2:
		return g.number()
	case 3:
		return map[string]any{"type": "boolean"}
	case 4:
		return map[string]any{"type": "null"}
	default:
		return map[string]any{"enum": g.enumValues()}
	}
}

func (g *gen) str() map[string]any {
	s := map[string]any{"type": "string"}
	switch g.pick(4) {
	case 0:
		s["format"] = formats[g.pick(len(formats))]
	case 1:
		s["pattern"] = patterns[g.pick(len(patterns))]
		if g.chance(0.3) {
			s["maxLength"] = 12 + g.pick(20)
		}
	case 2:
		lo := g.pick(4)
		if g.chance(0.7) {
			s["minLength"] = lo
		}
		s["maxLength"] = lo + g.pick(30)
	}
	return s
}

func (g *gen) integer() map[string]any {
	s := map[string]any{"type": "integer"}
	lo := g.rng.IntN(2001) - 1000
	hi := lo + g.rng.IntN(500)
	if g.chance(0.6) {
		if g.chance(0.3) {
			s["exclusiveMinimum"] = lo - 1
		} else {
			s["minimum"] = lo
		}
	}
	if g.chance(0.6) {
		if g.chance(0.3) {
			s["exclusiveMaximum"] = hi + 1
		} else {
			s["maximum"] = hi
		}
	}
	return s
}

func (g *gen) number() map[string]any {
	s := map[string]any{"type": "number"}
	lo := float64(g.rng.IntN(20001)-10000) / 100
	hi := lo + float64(g.rng.IntN(5000)+1)/100
	if g.chance(0.6) {
		if g.chance(0.4) {
			s["exclusiveMinimum"] = lo
		} else {
			s["minimum"] = lo
		}
	}
	if g.chance(0.6) {
		if g.chance(0.4) {
			s["exclusiveMaximum"] = hi
		} else {
			s["maximum"] = hi
		}
	}
	return s
}

func (g *gen) object(depth int) map[string]any {
	s := map[string]any{"type": "object"}
	props := map[string]any{}
	var required []any
	n := g.pick(4)
	if depth >= 2 {
		n = g.pick(3)
	}
	for i := 0; i < n; i++ {
		name := propNames[g.pick(len(propNames))]
		if _, dup := props[name]; dup {
			continue
		}
		req := g.chance(0.5)
		props[name] = g.schema(depth+1, !req)
		if req {
			required = append(required, name)
		}
	}
	if len(props) > 0 || g.chance(0.5) {
		s["properties"] = props
	}
	if len(required) > 0 {
		s["required"] = required
	}
	switch g.pick(4) {
	case 0:
		s["additionalProperties"] = false
	case 1:
		s["additionalProperties"] = g.chance(0.5)
	case 2:
		if depth < 2 {
			s["additionalProperties"] = g.scalar()
		}
	}
	return s
}

func (g *gen) array(depth int) map[string]any {
	s := map[string]any{"type": "array"}
	minI := 0
	if g.chance(0.5) {
		minI = g.pick(3)
		s["minItems"] = minI
	}
	if g.chance(0.6) {
		s["maxItems"] = minI + g.pick(4)
	}
	if g.chance(0.85) {
		s["items"] = g.schema(depth+1, minI == 0)
	}
	return s
}

// oneOf draws branches of pairwise different kinds, or discriminated objects.
func (g *gen) oneOf(depth int) map[string]any {
	if g.chance(0.3) {
		var br []any
		for i, tag := range []string{"alpha", "beta", "gamma"}[:2+g.pick(2)] {
			props := map[string]any{"kind": map[string]any{"const": tag}}
			req := []any{"kind"}
			if i%2 == 0 {
				props["v"] = g.scalar()
				req = append(req, "v")
			}
			br = append(br, map[string]any{"type": "object", "properties": props, "required": req, "additionalProperties": g.chance(0.5)})
		}
		return map[string]any{"oneOf": br}
	}
	kinds := []func() any{
		func() any { return g.str() },
		func() any { return g.integer() },
		func() any { return map[string]any{"type": "boolean"} },
		func() any { return map[string]any{"type": "null"} },
		func() any { return g.array(depth + 1) },
		func() any { return g.object(depth + 1) },
	}
	order := g.rng.Perm(len(kinds))
	var br []any
	for _, k := range order[:2+g.pick(2)] {
		br = append(br, kinds[k]())
	}
	return map[string]any{"oneOf": br}
}

// ref puts a schema in $defs and refers to it.
func (g *gen) ref(depth int) any {
	if g.defs == nil {
		g.defs = map[string]any{}
	}
	name := fmt.Sprintf("d%d", len(g.defs))
	g.defs[name] = nil // reserve the name while the body is drawn
	g.defs[name] = g.schema(depth+1, false)
	return map[string]any{"$ref": "#/$defs/" + name}
}

// recursiveRef defines a recursive type (a node whose children refer back to it,
// always optionally) and refers to it.
func (g *gen) recursiveRef(depth int) any {
	if g.defs == nil {
		g.defs = map[string]any{}
	}
	name := fmt.Sprintf("r%d", len(g.defs))
	self := map[string]any{"$ref": "#/$defs/" + name}
	var node any
	switch g.pick(3) {
	case 0:
		node = map[string]any{"type": "object", "properties": map[string]any{"v": g.scalar(), "next": self},
			"required": []any{"v"}, "additionalProperties": false}
	case 1:
		node = map[string]any{"type": "object", "properties": map[string]any{"kids": map[string]any{"type": "array", "items": self, "maxItems": 2}}}
	default:
		node = map[string]any{"anyOf": []any{g.scalar(), map[string]any{"type": "array", "items": self, "maxItems": 3}}}
	}
	g.defs[name] = node
	return self
}

// Describe abbreviates a schema for messages.
func Describe(s string) string {
	if len(s) > 160 {
		return s[:157] + "..."
	}
	return strings.TrimSpace(s)
}
