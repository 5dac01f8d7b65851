package grammar

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Regexes whose ECMAScript and RE2 meanings agree on the test alphabet: the grammar
// must accept exactly the strings Go's regexp matches in full.
func TestRegexMatchesGoRegexp(t *testing.T) {
	v := byteVocab(t)
	patterns := []string{
		`a`, `ab|cd`, `(ab)*c?`, `[a-c]+x{2,3}`, `\d{1,3}(\.\d+)?`, `[^ab]*`, `(a|b)*abb`,
		`x?y+z*`, `(?:ab){0,2}c`, `[a-c\d]{3}`, `\w+@\w+\.com`, `a{3}`, `(a+|b+)c`, `[\x41-\x43]+`,
		`caf\u00e9`, `\u{1F600}?x`, `a.c`, `\Wq`, `[.]+`, `(?<n>ab)+`,
	}
	alphabet := []string{"a", "b", "c", "x", "y", "z", "1", "2", ".", "@", "_", "com", "é", "\U0001F600", "A", "B", "q", " ", "-"}
	rng := rand.New(rand.NewPCG(9, 10))
	for _, p := range patterns {
		g, err := Regex(p, Options{})
		require.NoError(t, err, p)
		goP, err := translateJS(p)
		require.NoError(t, err)
		re := regexp.MustCompile(`^(?:` + goP + `)$`)
		var cases []string
		for i := 0; i < 400; i++ {
			var b strings.Builder
			for n := rng.IntN(7); n > 0; n-- {
				b.WriteString(alphabet[rng.IntN(len(alphabet))])
			}
			cases = append(cases, b.String())
		}
		// Strings the pattern generates, so that positives are tested too.
		for i := 0; i < 100; i++ {
			text, _, ended := randomWalk(t, g, v, rng, 40, 0.3)
			if ended {
				cases = append(cases, text)
			}
		}
		pos := 0
		for _, s := range cases {
			want := re.MatchString(s)
			require.Equal(t, want, accepts(g, v, s), "pattern %q on %q", p, s)
			if want {
				pos++
			}
		}
		require.Positive(t, pos, p)
	}
}

func TestRegexRefused(t *testing.T) {
	for _, p := range []string{`(?=a)`, `(?!a)b`, `(?<=a)b`, `\1`, `a\bc`, `[]`, `[^]`, `a^b`, `\k<x>`, `(`, `[\S]`, `(?i)a`} {
		_, err := Regex(p, Options{})
		require.Error(t, err, p)
		var re *RegexError
		require.ErrorAs(t, err, &re, p)
	}
}

// The JSON Schema pattern keyword searches (unanchored unless ^/$), over the decoded
// string; the grammar writes the canonical JSON encoding.
func TestPatternSearchSemantics(t *testing.T) {
	v := byteVocab(t)
	for _, tc := range []struct {
		pattern string
		yes, no []string
	}{
		{`b+`, []string{"b", "abc", "xxbb"}, []string{"", "ac"}},
		{`^ab`, []string{"ab", "abz"}, []string{"zab", "a"}},
		{`c$`, []string{"c", "abc"}, []string{"cd"}},
		{`^a|b$`, []string{"ax", "xb", "ab"}, []string{"xa", "bx"}},
		{`^\s*$`, []string{"", " ", "\t\n", "\u00a0"}, []string{"a"}},
		{`^"\\$`, []string{`"\`}, []string{`"`}},
		{`^.$`, []string{"a", "é"}, []string{"\n", "\r", "ab"}},
	} {
		g, err := JSONSchema([]byte(fmt.Sprintf(`{"type":"string","pattern":%s}`, quote(tc.pattern))), Options{})
		require.NoError(t, err, tc.pattern)
		for _, s := range tc.yes {
			require.True(t, accepts(g, v, quote(s)), "%q should match %q", tc.pattern, s)
		}
		for _, s := range tc.no {
			require.False(t, accepts(g, v, quote(s)), "%q should not match %q", tc.pattern, s)
		}
	}
}

func TestIntegerBoundsExact(t *testing.T) {
	v := byteVocab(t)
	rng := rand.New(rand.NewPCG(11, 12))
	bounds := []string{"0", "1", "-1", "7", "-7", "9", "10", "99", "100", "-100", "123", "-987", "1000", "2.5", "-2.5", "1e2", "4999"}
	for i := 0; i < 60; i++ {
		lo, hi := bounds[rng.IntN(len(bounds))], bounds[rng.IntN(len(bounds))]
		kwLo := []string{"minimum", "exclusiveMinimum"}[rng.IntN(2)]
		kwHi := []string{"maximum", "exclusiveMaximum"}[rng.IntN(2)]
		s := fmt.Sprintf(`{"type":"integer","%s":%s,"%s":%s}`, kwLo, lo, kwHi, hi)
		g, err := JSONSchema([]byte(s), Options{})
		l, _ := new(big.Rat).SetString(lo)
		h, _ := new(big.Rat).SetString(hi)
		in := func(x int) bool {
			r := new(big.Rat).SetInt64(int64(x))
			okLo := r.Cmp(l) >= 0
			if kwLo == "exclusiveMinimum" {
				okLo = r.Cmp(l) > 0
			}
			okHi := r.Cmp(h) <= 0
			if kwHi == "exclusiveMaximum" {
				okHi = r.Cmp(h) < 0
			}
			return okLo && okHi
		}
		any := false
		for x := -1100; x <= 5100; x++ {
			if in(x) {
				any = true
			}
		}
		if !any {
			require.Error(t, err, s)
			continue
		}
		require.NoError(t, err, s)
		for x := -1100; x <= 5100; x++ {
			require.Equal(t, in(x), accepts(g, v, fmt.Sprint(x)), "%s on %d", s, x)
		}
		for _, bad := range []string{"-0", "01", "+1", "1.0", "1e1", ""} {
			require.False(t, accepts(g, v, bad), "%s accepted %q", s, bad)
		}
	}
}

func TestNumberBoundsExact(t *testing.T) {
	v := byteVocab(t)
	rng := rand.New(rand.NewPCG(13, 14))
	bounds := []string{"0", "0.5", "-0.5", "1", "-1.25", "2.75", "0.001", "-0.001", "3", "10.5"}
	for i := 0; i < 40; i++ {
		lo, hi := bounds[rng.IntN(len(bounds))], bounds[rng.IntN(len(bounds))]
		kwLo := []string{"minimum", "exclusiveMinimum"}[rng.IntN(2)]
		kwHi := []string{"maximum", "exclusiveMaximum"}[rng.IntN(2)]
		s := fmt.Sprintf(`{"type":"number","%s":%s,"%s":%s}`, kwLo, lo, kwHi, hi)
		g, err := JSONSchema([]byte(s), Options{})
		l, _ := new(big.Rat).SetString(lo)
		h, _ := new(big.Rat).SetString(hi)
		in := func(r *big.Rat) bool {
			okLo := r.Cmp(l) >= 0
			if kwLo == "exclusiveMinimum" {
				okLo = r.Cmp(l) > 0
			}
			okHi := r.Cmp(h) <= 0
			if kwHi == "exclusiveMaximum" {
				okHi = r.Cmp(h) < 0
			}
			return okLo && okHi
		}
		if l.Cmp(h) > 0 || l.Cmp(h) == 0 && (kwLo[0] == 'e' || kwHi[0] == 'e') {
			require.Error(t, err, s)
			continue
		}
		require.NoError(t, err, s)
		// Every multiple of 0.001 in [-12, 12], in its shortest form and with a trailing
		// zero.
		for x := -12000; x <= 12000; x++ {
			r := big.NewRat(int64(x), 1000)
			text := r.FloatString(3)
			text = strings.TrimRight(strings.TrimRight(text, "0"), ".")
			if text == "-0" {
				continue
			}
			require.Equal(t, in(r), accepts(g, v, text), "%s on %s", s, text)
			if strings.Contains(text, ".") {
				require.Equal(t, in(r), accepts(g, v, text+"0"), "%s on %s0", s, text)
			}
		}
		for _, bad := range []string{"-0", "01", ".5", "1.", "1e0", "+1", "-0.0"} {
			require.False(t, accepts(g, v, bad), "%s accepted %q", s, bad)
		}
	}
	_, err := JSONSchema([]byte(`{"type":"number","minimum":0.1234567890123456}`), Options{})
	require.Error(t, err)
	require.Contains(t, err.Error(), "significant digits")
}

func TestSchemaErrorsNameTheKeyword(t *testing.T) {
	for _, tc := range []struct{ schema, keyword string }{
		{`{"type":"string","format":"hostname"}`, "format"},
		{`{"type":"object","patternProperties":{"a":{}}}`, "patternProperties"},
		{`{"type":"array","uniqueItems":true}`, "uniqueItems"},
		{`{"type":"number","multipleOf":2}`, "multipleOf"},
		{`{"not":{"type":"string"}}`, "not"},
		{`{"if":{},"then":{}}`, "if"},
		{`{"type":"object","minProperties":1}`, "minProperties"},
		{`{"typo":1}`, "typo"},
		{`{"allOf":[{"type":"string"},{"minLength":2}]}`, "allOf"},
		{`{"oneOf":[{"type":"integer"},{"type":"number"}]}`, "oneOf"},
		{`{"oneOf":[{"type":"object","properties":{"a":{}}},{"type":"object"}]}`, "oneOf"},
		{`{"$ref":"http://example.com/s.json"}`, "$ref"},
		{`{"$ref":"#/$defs/missing"}`, "$ref"},
		{`{"$defs":{"a":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"}`, "$ref"},
		{`{"type":"string","pattern":"(?=x)"}`, "pattern"},
		{`{"type":"nope"}`, "type"},
		{`{"type":"integer","exclusiveMinimum":true}`, "exclusiveMinimum"},
		{`{"type":"string","maxLength":100000}`, "maxLength"},
		{`{"type":"integer","minimum":1e20}`, "minimum"},
		{`{"anyOf":[{"type":"string"}],"minLength":1}`, "minLength"},
		{`{"nullable":true,"type":"string"}`, "nullable"},
	} {
		_, err := JSONSchema([]byte(tc.schema), Options{})
		require.Error(t, err, tc.schema)
		var se *SchemaError
		require.ErrorAs(t, err, &se, tc.schema)
		require.Equal(t, tc.keyword, se.Keyword, "%s: %v", tc.schema, err)
	}
	for _, s := range []string{`{"type":"string","minLength":3,"maxLength":2}`, `false`, `{"type":"integer","minimum":3,"maximum":2}`,
		`{"type":"object","required":["a"],"additionalProperties":false}`} {
		_, err := JSONSchema([]byte(s), Options{})
		require.Error(t, err, s)
		require.Contains(t, err.Error(), "no JSON value satisfies", s)
	}
	_, err := JSONSchema([]byte(`{"type":`), Options{})
	require.ErrorContains(t, err, "invalid JSON")
}

func TestOneOfDisjointAccepted(t *testing.T) {
	for _, s := range []string{
		`{"oneOf":[{"type":"string"},{"type":"integer"},{"type":"null"}]}`,
		`{"oneOf":[{"const":1},{"const":2},{"enum":["a","b"]}]}`,
		`{"oneOf":[{"type":"object","properties":{"kind":{"const":"a"},"x":{"type":"integer"}},"required":["kind"]},{"type":"object","properties":{"kind":{"const":"b"}},"required":["kind"]}]}`,
	} {
		_, err := JSONSchema([]byte(s), Options{})
		require.NoError(t, err, s)
	}
}
