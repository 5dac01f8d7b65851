package jinja

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// msg is a chat message as a template sees it.
func msg(role, content string) *Dict { return NewDict().Set("role", role).Set("content", content) }

var unitCtx = map[string]any{
	"items":   []int{1, 2, 3},
	"words":   []string{"pear", "Apple", "banana", "apple"},
	"name":    "Alice",
	"n":       3,
	"f":       2.5,
	"flag":    true,
	"nothing": nil,
	"d":       NewDict().Set("b", 2).Set("a", 1),
	"gomap":   map[string]any{"z": 1, "a": "x"},
	"msgs":    []any{msg("system", "S"), msg("user", "U1"), msg("assistant", "A1"), msg("user", "U2")},
}

func render(t *testing.T, src string, opts Options, ctx map[string]any) (string, error) {
	t.Helper()
	tpl, err := ParseOptions(src, opts)
	if err != nil {
		return "", err
	}
	return tpl.Render(ctx)
}

// TestFeatures checks each language feature against the output Python's
// Jinja2 (as transformers configures it for the HF rows) produces.
func TestFeatures(t *testing.T) {
	hf := HFOptions
	tests := []struct {
		name, src string
		opts      Options
		want      string
	}{
		// delimiters and whitespace
		{"text", "plain text", Options{}, "plain text"},
		{"comment", "a{# hidden #}b", Options{}, "ab"},
		{"trailing-newline-dropped", "x\n", Options{}, "x"},
		{"keep-trailing-newline", "x\n", Options{KeepTrailingNewline: true}, "x\n"},
		{"ws-control", "a  {{- 'b' -}}  c {%- if true -%}  d  {%- endif %} e", Options{}, "abcd e"},
		{"ws-comment", "a {#- c -#} b", Options{}, "ab"},
		{"defaults-keep-newlines", "{% if true %}\n  x\n  {% endif %}\ny", Options{}, "\n  x\n  \ny"},
		{"trim-blocks", "{% if true %}\n  x\n  {% endif %}\ny", Options{TrimBlocks: true}, "  x\n  y"},
		{"lstrip-blocks", "{% if true %}\n  x\n  {% endif %}\ny", Options{LstripBlocks: true}, "\n  x\n\ny"},
		{"hf-both", "{% if true %}\n  x\n  {% endif %}\ny", hf, "  x\ny"},
		{"trim-not-after-var", "{{ 'a' }}\nb", hf, "a\nb"},
		{"lstrip-not-before-var", "  {{ 'a' }}", hf, "  a"},
		{"lstrip-only-at-line-start", "x  {% if true %}y{% endif %}", hf, "x  y"},
		{"plus-disables-lstrip", "  {%+ if true %}y{% endif %}", hf, "  y"},
		{"plus-disables-trim", "{% if true +%}\ny{% endif %}", hf, "\ny"},
		{"raw", "{% raw %}{{ not rendered }}{% endraw %}", Options{}, "{{ not rendered }}"},
		{"dict-literal-in-output", "{{ {'a': {'b': 1}}['a']['b'] }}", Options{}, "1"},
		// printing follows Python's str()
		{"print-bool-none", "{{ true }} {{ False }} {{ none }} {{ nothing }}", Options{}, "True False None None"},
		{"print-list-dict", "{{ [1, 'a', none] }} {{ {'k': 'v'} }} {{ d }}", Options{}, "[1, 'a', None] {'k': 'v'} {'b': 2, 'a': 1}"},
		{"print-floats", "{{ 1.0 }} {{ 0.1 + 0.2 }} {{ 1e20 }} {{ 4 / 2 }} {{ f }}", Options{}, "1.0 0.30000000000000004 1e+20 2.0 2.5"},
		{"go-map-sorted", "{{ gomap|tojson }}", Options{}, `{"a": "x", "z": 1}`},
		// control flow
		{"if-elif-else", "{% for i in [1, 2, 3] %}{% if i == 1 %}a{% elif i == 2 %}b{% else %}c{% endif %}{% endfor %}", Options{}, "abc"},
		{"loop-vars", "{% for x in items %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.length }}{{ loop.first }}{{ loop.last }};{% endfor %}", Options{}, "10323TrueFalse;21213FalseFalse;32103FalseTrue;"},
		{"loop-cycle", "{% for x in items %}{{ loop.cycle('a', 'b') }}{% endfor %}", Options{}, "aba"},
		{"for-else", "{% for x in [] %}x{% else %}none{% endfor %}", Options{}, "none"},
		{"for-if", "{% for x in items if x is odd %}{{ x }}{{ loop.length }}{% endfor %}", Options{}, "1232"},
		{"for-unpack", "{% for k, v in d.items() %}{{ k }}={{ v }} {% endfor %}{% for (a, b) in [[1, 2]] %}{{ a + b }}{% endfor %}", Options{}, "b=2 a=1 3"},
		{"for-string", "{% for c in 'héllo' %}{{ c }}.{% endfor %}", Options{}, "h.é.l.l.o."},
		{"break-continue", "{% for x in [1, 2, 3, 4] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}", Options{}, "13"},
		{"set-tuple", "{% set a, b = 1, 2 %}{{ a }}{{ b }}", Options{}, "12"},
		{"block-set", "{% set x %} <{{ name }}> {% endset %}[{{ x }}]", Options{}, "[ <Alice> ]"},
		{"block-set-filter", "{% set x | upper | trim %} abc {% endset %}[{{ x }}]", Options{}, "[ABC]"},
		{"set-in-loop-is-local", "{% set x = 1 %}{% for i in items %}{% set x = i %}{% endfor %}{{ x }}", Options{}, "1"},
		{"namespace", "{% set ns = namespace(n=0, s='') %}{% for i in items %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}", Options{}, "6"},
		{"namespace-from-dict", "{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}", Options{}, "12"},
		{"macro", "{% macro m(a, b='B') %}{{ a }}{{ b }}{{ varargs|length }}{% endmacro %}{{ m(1) }} {{ m(1, b=2) }} {{ m(1, 2, 3) }}", Options{}, "1B0 120 121"},
		{"macro-kwargs", "{% macro m(a) %}{{ kwargs.x }}{% endmacro %}{{ m(1, x=5) }}", Options{}, "5"},
		{"call-block", "{% macro w(t) %}<{{ t }}>{{ caller() }}</{{ t }}>{% endmacro %}{% call w('p') %}hi{% endcall %}", Options{}, "<p>hi</p>"},
		{"call-block-args", "{% macro each(xs) %}{% for x in xs %}{{ caller(x) }}{% endfor %}{% endmacro %}{% call(v) each([1, 2]) %}[{{ v }}]{% endcall %}", Options{}, "[1][2]"},
		{"filter-block", "{% filter upper %}abc{% endfilter %}", Options{}, "ABC"},
		{"do", "{% do items.index(2) %}x", Options{}, "x"},
		{"generation-tag", "{% generation %}gen{% endgeneration %}", Options{}, "gen"},
		// expressions
		{"arith", "{{ 1 + 2 * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 3 ** 2 }} {{ 7 / 2 }} {{ 2 ** -1 }}", Options{}, "7 3 -4 2 64 3.5 0.5"},
		{"concat-precedence", "{{ 'a' ~ 2 * 3 }} {{ 'x' ~ none ~ missing }}", Options{}, "a6 xNone"},
		{"string-concat", "{{ 'a' + 'b' }} {{ 'ab' * 2 }} {{ [1] * 2 }} {{ [1] + [2] }}", Options{}, "ab abab [1, 1] [1, 2]"},
		{"compare-chain", "{{ 1 < 2 < 3 }} {{ 1 < 3 < 2 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }}", Options{}, "True False True True"},
		{"equality-python", "{{ '' != false }} {{ 1 == 1.0 }} {{ 1 == true }} {{ '1' == 1 }} {{ none == none }} {{ [1, 'a'] == [1, 'a'] }}", Options{}, "True True True False True True"},
		{"logic-returns-operand", "{{ 0 or 'x' }} {{ 'a' and 'b' }} {{ '' and 'b' }}|{{ not 0 }}", Options{}, "x b |True"},
		{"in", "{{ 'b' in 'abc' }} {{ 2 in items }} {{ 'a' in d }} {{ 'q' not in d }} {{ 'x' in missing }}", Options{}, "True True True True False"},
		{"ternary", "{{ 'y' if flag else 'n' }} {{ 'y' if not flag else 'n' }} [{{ 'y' if false }}]", Options{}, "y n []"},
		{"subscript-attr", "{{ msgs[1]['role'] }} {{ msgs[1].content }} {{ msgs.0.role }} {{ msgs[-1].content }} {{ name[0] }}", Options{}, "user U1 system U2 A"},
		{"slices", "{{ items[1:] }} {{ items[::-1] }} {{ items[:-1] }} {{ name[1:3] }} {{ name[::-2] }} {{ items[5:] }}", Options{}, "[2, 3] [3, 2, 1] [1, 2] li eiA []"},
		{"string-escapes", `{{ 'a\'b' }}|{{ "q\"q" }}|{{ 'tab\tnl\n' }}|{{ '\u00e9\x41\\' }}|{{ '\d' }}`, Options{}, "a'b|q\"q|tab\tnl\n|éA\\|\\d"},
		{"literals", "{{ [1, 2,]|length }} {{ (1,)|length }} {{ {'a': 1,}['a'] }} {{ True }} {{ 1_000 }} {{ 1.5e3 }}", Options{}, "2 1 1 True 1000 1500.0"},
		{"unary", "{{ -n }} {{ +n }} {{ -(1 + 2) }} {{ - f }}", Options{}, "-3 3 -3 -2.5"},
		// undefined
		{"undefined", "[{{ missing }}][{{ missing.x.y }}][{{ missing['k'] }}][{{ d.nope }}][{{ items[10] }}]{% if not missing %}falsy{% endif %}{% for x in missing %}x{% endfor %}", Options{}, "[][][][][]falsy"},
		{"undefined-concat", "{{ 'a' ~ missing ~ 'b' }}", Options{}, "ab"},
		// tests
		{"tests", "{{ name is string }}{{ n is number }}{{ f is float }}{{ n is integer }}{{ d is mapping }}{{ items is iterable }}{{ nothing is none }}{{ missing is defined }}{{ missing is undefined }}{{ flag is boolean }}{{ n is odd }}{{ n is even }}{{ 9 is divisibleby 3 }}{{ n is eq 3 }}{{ n is sameas 3 }}{{ 'abc' is lower }}{{ 2 is in items }}{{ n is not string }}", Options{}, "TrueTrueTrueTrueTrueTrueTrueFalseTrueTrueTrueFalseTrueTrueTrueTrueTrueTrue"},
		// filters
		{"f-trim", "[{{ '  a b \n'|trim }}][{{ 'xxaxx'|trim('x') }}]", Options{}, "[a b][a]"},
		{"f-case", "{{ 'aBc'|upper }} {{ 'aBc'|lower }} {{ 'hELLO wORLD-x'|title }} {{ 'hELLO'|capitalize }}", Options{}, "ABC abc Hello World-X Hello"},
		{"f-replace", "{{ 'aaa'|replace('a', 'b') }} {{ 'aaa'|replace('a', 'b', 2) }}", Options{}, "bbb bba"},
		{"f-length", "{{ 'héllo'|length }} {{ items|length }} {{ d|length }} {{ missing|length }} {{ items|count }}", Options{}, "5 3 2 0 3"},
		{"f-join", "{{ items|join }} {{ items|join(', ') }} {{ msgs|join('|', attribute='role') }}", Options{}, "123 1, 2, 3 system|user|assistant|user"},
		{"f-first-last", "{{ items|first }} {{ items|last }} {{ 'abc'|first }} [{{ []|first }}]", Options{}, "1 3 a []"},
		{"f-default", "{{ missing|default('x') }} {{ ''|default('x') }} {{ ''|default('x', true) }} {{ missing|d('y') }} {{ nothing|default('z') }}", Options{}, "x  x y None"},
		{"f-string-int-float", "{{ 42|string }} {{ '42'|int + 1 }} {{ '4.7'|int }} {{ 'x'|int }} {{ 'x'|int(7) }} {{ 3.9|int }} {{ '2.5'|float }} {{ true|int }}", Options{}, "42 43 4 0 7 3 2.5 1"},
		{"f-list-items", "{{ 'ab'|list }} {{ d|items|list }} {{ d|list }}", Options{}, "['a', 'b'] [['b', 2], ['a', 1]] ['b', 'a']"},
		{"f-sort", "{{ words|sort|join(',') }} {{ words|sort(case_sensitive=true)|join(',') }} {{ items|sort(reverse=true)|join }} {{ msgs|sort(attribute='role')|map(attribute='content')|join }}", Options{}, "Apple,apple,banana,pear Apple,apple,banana,pear 321 A1SU1U2"},
		{"f-dictsort", "{{ d|dictsort }}", Options{}, "[['a', 1], ['b', 2]]"},
		{"f-unique", "{{ words|unique|join(',') }} {{ words|unique(case_sensitive=true)|join(',') }}", Options{}, "pear,Apple,banana pear,Apple,banana,apple"},
		{"f-reverse", "{{ items|reverse|join }} {{ 'abc'|reverse }}", Options{}, "321 cba"},
		{"f-min-max-sum", "{{ items|min }} {{ items|max }} {{ items|sum }} {{ words|max }}", Options{}, "1 3 6 pear"},
		{"f-selectattr", "{{ msgs|selectattr('role', 'equalto', 'user')|map(attribute='content')|join }} {{ msgs|rejectattr('role', 'eq', 'user')|list|length }} {{ msgs|selectattr('role')|list|length }}", Options{}, "U1U2 2 4"},
		{"f-select", "{{ items|select('odd')|join }} {{ items|reject('odd')|join }} {{ [0, 1, '', 'a']|select|list }} {{ ['a', 'code', 'b']|reject('equalto', 'code')|join(',') }}", Options{}, "13 2 [1, 'a'] a,b"},
		{"f-map", "{{ words|map('upper')|join(',') }} {{ msgs|map(attribute='nope', default='-')|join }} {{ [[1, 2]]|map(attribute='1')|join }}", Options{}, "PEAR,APPLE,BANANA,APPLE ---- 2"},
		{"f-tojson", `{{ d|tojson }} {{ {'s': 'é"\n', 'l': [1, 2.5, true, none]}|tojson }} {{ []|tojson(indent=2) }}`, Options{}, `{"b": 2, "a": 1} {"s": "é\"\n", "l": [1, 2.5, true, null]} []`},
		{"f-tojson-indent", "{{ {'a': [1, {'b': 2}], 'c': {}}|tojson(indent=2) }}", Options{}, "{\n  \"a\": [\n    1,\n    {\n      \"b\": 2\n    }\n  ],\n  \"c\": {}\n}"},
		{"f-tojson-kwargs", "{{ {'b': 'é', 'a': 1}|tojson(sort_keys=true, ensure_ascii=true) }} {{ {'a': 1}|tojson(separators=(',', ':')) }}", Options{}, `{"a": 1, "b": "\u00e9"} {"a":1}`},
		{"f-indent", "{{ 'a\nb\n\nc'|indent(2) }}|{{ 'a\nb'|indent(2, true) }}|{{ 'a\n\nb'|indent(1, blank=true) }}", Options{}, "a\n  b\n\n  c|  a\n  b|a\n \n b"},
		{"f-misc", "{{ '<a&b>'|e }} {{ '%s-%d'|format('x', 3) }} {{ -3|abs }} {{ 2.567|round(2) }} {{ 'one two'|wordcount }} {{ [1,2,3]|batch(2)|list }} {{ d|attr('get') is callable }} {{ 'x'|safe }}", Options{}, "&lt;a&amp;b&gt; x-3 3 2.57 2 [[1, 2], [3]] True x"},
		// methods
		{"m-str", "[{{ '  a  '.strip() }}][{{ 'xxaxx'.lstrip('x') }}][{{ '  a  '.rstrip() }}][{{ 'a,b'.split(',') }}][{{ ' a  b '.split() }}][{{ 'a b c'.split(' ', 1) }}]", Options{}, "[a][axx][  a][['a', 'b']][['a', 'b']][['a', 'b c']]"},
		{"m-str2", "{{ 'Hi'.upper() }}{{ 'Hi'.lower() }} {{ \"they're bill's\".title() }} {{ 'abc'.startswith('a') }} {{ 'abc'.startswith(('x', 'ab')) }} {{ 'abc'.endswith('bc') }} {{ 'aXa'.replace('a', 'b') }} {{ '-'.join(['a', 'b']) }} {{ 'abcb'.find('b') }} {{ 'abcb'.count('b') }} {{ 'a\nb'.splitlines() }}", Options{}, "HIhi They'Re Bill'S True True True bXb a-b 1 2 ['a', 'b']"},
		{"m-dict", "{{ d.get('a') }} {{ d.get('zz') }} {{ d.get('zz', 'def') }} {{ d.keys()|list }} {{ d.values()|list }} {{ d.items()|list }}", Options{}, "1 None def ['b', 'a'] [2, 1] [['b', 2], ['a', 1]]"},
		{"m-list", "{{ items.index(2) }} {{ items.count(2) }}", Options{}, "1 1"},
		// globals
		{"range", "{{ range(3)|list }} {{ range(1, 7, 2)|list }} {{ range(3, 0, -1)|list }}", Options{}, "[0, 1, 2] [1, 3, 5] [3, 2, 1]"},
		{"dict-global", "{{ dict(a=1, b='x')|tojson }}", Options{}, `{"a": 1, "b": "x"}`},
		{"strftime-now", "{{ strftime_now('%Y-%m-%d %H:%M %b %B %d %A %%') }}", Options{}, "2024-07-26 13:05 Jul July 26 Friday %"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := map[string]any{}
			for k, v := range unitCtx {
				ctx[k] = v
			}
			ctx[NowKey] = time.Date(2024, 7, 26, 13, 5, 0, 0, time.UTC)
			got, err := render(t, tc.src, tc.opts, ctx)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestSyntaxErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"unclosed-if", "{% if x %}\nbody", `2:5: unclosed 'if' block opened at 1:1: expected {% endif %}`},
		{"unclosed-for", "a\n  {% for x in y %}{{ x }}", `unclosed 'for' block opened at 2:3: expected {% endfor %}`},
		{"unclosed-expr", "hello {{ name", `1:7: unclosed tag: expected '}}'`},
		{"unclosed-block-tag", "{% if x", `1:1: unclosed tag: expected '%}'`},
		{"unclosed-comment", "a {# never", `1:3: unclosed comment: expected '#}'`},
		{"unclosed-string", "{{ 'abc }}", `unterminated string literal`},
		{"unclosed-raw", "{% raw %}abc", `unclosed 'raw' block`},
		{"stray-end", "{% endif %}", `1:4: unexpected 'endif': no open block to close`},
		{"mismatched-end", "{% if x %}{% endfor %}", `1:14: unexpected 'endfor': expected 'elif', 'else' or 'endif' (to close 'if' opened at 1:1)`},
		{"unknown-filter", "{{ x | frobnicate }}", `1:8: unknown filter 'frobnicate'`},
		{"unknown-test", "{{ x is frob }}", `1:9: unknown test 'frob'`},
		{"unknown-statement", "{% frob %}", `unknown statement 'frob'`},
		{"unsupported-include", "{% include 'x' %}", `unsupported statement 'include'`},
		{"missing-in", "{% for x y %}{% endfor %}", `1:10: expected 'in' after the loop variable, got 'y'`},
		{"bad-expr", "line1\n{{ 1 + }}", `2:8: expected an expression, got '}}'`},
		{"missing-paren", "{{ f(1, 2 }}", "1:11: expected ')', got '}}'"},
		{"bad-char", "{{ a $ b }}", `unexpected character '$'`},
		{"set-missing-eq", "{% set a, b %}", `expected '=' in set`},
		{"deep-nesting", "{{ " + strings.Repeat("(", 500) + "1" + strings.Repeat(")", 500) + " }}", `nested too deeply`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.src)
			require.Error(t, err)
			var se *SyntaxError
			require.True(t, errors.As(err, &se), "%T %v", err, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestRenderErrors(t *testing.T) {
	small := Options{MaxSteps: 100_000, MaxOutput: 1 << 16}
	tests := []struct {
		name, src string
		opts      Options
		want      string
		limit     bool
	}{
		{"unknown-function", "{{ frobnicate(1) }}", Options{}, "1:4: unknown function 'frobnicate'", false},
		{"unknown-method", "{{ items.append(4) }}", Options{}, "'append' is undefined and cannot be called", false},
		{"not-callable", "{{ name() }}", Options{}, "'str' object is not callable", false},
		{"undefined-arith", "{{ missing + 1 }}", Options{}, "('missing' is undefined)", false},
		{"type-error", "{{ 'a' + 1 }}", Options{}, `can only concatenate str (not "int") to str`, false},
		{"div-zero", "{{ 1 / 0 }}", Options{}, "division by zero", false},
		{"compare-types", "{{ 1 < 'a' }}", Options{}, "'<' not supported between instances of 'int' and 'str'", false},
		{"ns-assign", "{% set x = 1 %}{% set x.y = 2 %}", Options{}, "only namespace() objects support attribute assignment", false},
		{"unpack", "{% for a, b in [1] %}{% endfor %}", Options{}, "cannot unpack int into 2 loop variables", false},
		{"not-iterable", "{% for a in 5 %}{% endfor %}", Options{}, "'int' object is not iterable", false},
		{"filter-error", "{{ 5|items }}", Options{}, "filter 'items'", false},
		{"runaway-loop", "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", small, "exceeded 100000 steps", true},
		{"runaway-output", "{% for i in range(20000) %}xxxxxxxxxx{% endfor %}", small, "output exceeded 65536 bytes", true},
		{"runaway-recursion", "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", Options{}, "nested deeper than 100", true},
		{"runaway-string", "{% set s = namespace(v='ab') %}{% for i in range(40) %}{% set s.v = s.v ~ s.v %}{% endfor %}", small, "larger than the 65536 byte output limit", true},
		{"huge-repeat", "{{ 'a' * 10000000000 }}", small, "output limit", true},
		{"huge-range", "{{ range(10000000000)|length }}", Options{}, "range() of 10000000000 items exceeds", true},
		{"int-overflow", "{{ 2 ** 100 }}", Options{}, "integer overflow", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan struct{})
			var err error
			go func() {
				defer close(done)
				_, err = render(t, tc.src, tc.opts, unitCtx)
			}()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("render did not stop")
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			var le *LimitError
			require.Equal(t, tc.limit, errors.As(err, &le), "%v", err)
		})
	}
}

func TestRaiseException(t *testing.T) {
	tpl, err := Parse("line\n  {{ raise_exception('Conversation roles must alternate ' ~ n) }}")
	require.NoError(t, err)
	_, err = tpl.Render(map[string]any{"n": 2})
	var re *RaiseError
	require.True(t, errors.As(err, &re), "%T", err)
	require.Equal(t, "Conversation roles must alternate 2", re.Message)
	require.Equal(t, Pos{2, 6}, re.Pos)
	require.Contains(t, err.Error(), "Conversation roles must alternate 2")
}

func TestStrftimeNowDeterministic(t *testing.T) {
	// Llama 3.2 style: date from strftime_now when date_string is not given.
	tpl, err := Parse(`{{ strftime_now("%d %b %Y") }}`)
	require.NoError(t, err)
	for _, now := range []any{"2025-02-03", time.Date(2025, 2, 3, 0, 0, 0, 0, time.UTC), "2025-02-03T10:00:00Z"} {
		got, err := tpl.Render(map[string]any{NowKey: now})
		require.NoError(t, err)
		require.Equal(t, "03 Feb 2025", got)
	}
	_, err = tpl.Render(map[string]any{NowKey: "yesterday"})
	require.ErrorContains(t, err, NowKey)
}

func TestDecodeJSONKeepsOrder(t *testing.T) {
	v, err := DecodeJSON([]byte(`{"z": 1, "a": [1.5, true, null, "x"], "m": {"y": 2, "b": 3}}`))
	require.NoError(t, err)
	tpl, err := Parse("{{ v|tojson }}")
	require.NoError(t, err)
	got, err := tpl.Render(map[string]any{"v": v})
	require.NoError(t, err)
	require.Equal(t, `{"z": 1, "a": [1.5, true, null, "x"], "m": {"y": 2, "b": 3}}`, got)
	_, err = DecodeJSON([]byte(`{"a": 1} x`))
	require.Error(t, err)
}

// TestBigInputsAreBounded checks that filters over long sequences are charged
// per item, so they hit the step limit instead of running unbounded. The step
// limit is the bound under test; no wall-clock time is asserted.
func TestBigInputsAreBounded(t *testing.T) {
	opts := Options{MaxSteps: 200_000, MaxOutput: 1 << 16}
	for _, src := range []string{
		"{{ range(1000000)|unique|length }}",
		"{% for i in range(100) %}{{ range(100000)|sort|length }}{% endfor %}",
		"{% for i in range(1000) %}{% if 99999 in range(100000) %}{% endif %}{% endfor %}",
		"{{ ([1] * 100000 * 100)|length }}",
	} {
		_, err := render(t, src, opts, nil)
		var le *LimitError
		require.True(t, errors.As(err, &le), "%s: %v", src, err)
	}
	got, err := render(t, "{{ (range(50000) + range(50000))|unique|length }}", Options{}, nil)
	require.NoError(t, err)
	require.Equal(t, "50000", got)
}
