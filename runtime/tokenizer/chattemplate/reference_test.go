package chattemplate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/jinja"

	"github.com/vireo-ai/vireo/internal/testref"
)

// The differential test renders every fixture template and a set of synthetic
// feature templates with both this package and @huggingface/jinja (the engine
// transformers.js uses, run by testdata/node/render.mjs) and requires
// byte-identical output, or an error from both.

const nodeDir = "testdata/node"

func loadFixtures(t testing.TB) map[string]string {
	t.Helper()
	paths, err := filepath.Glob("testdata/templates/*.jinja")
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	out := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		out[strings.TrimSuffix(filepath.Base(p), ".jinja")] = string(b)
	}
	return out
}

// conversation is a messages list written as JSON so tool calls and other
// non-Message fields can be expressed; extra holds additional variables.
type conversation struct {
	name     string
	messages string
	extra    string // JSON object or ""
}

var conversations = []conversation{
	{"user-only", `[{"role":"user","content":"Hello!"}]`, ""},
	{"system-user", `[{"role":"system","content":"You are a pirate."},{"role":"user","content":"Hi there"}]`, ""},
	{"multi-turn", `[{"role":"system","content":"Be brief."},{"role":"user","content":"What is 2+2?"},{"role":"assistant","content":"4."},{"role":"user","content":"And 3+3?"}]`, ""},
	{"ends-with-assistant", `[{"role":"user","content":"Ping"},{"role":"assistant","content":"Pong"},{"role":"user","content":"Again"},{"role":"assistant","content":"Pong!"}]`, ""},
	{"special-chars", `[{"role":"user","content":"Ünïcödé 😀 <tag> & \"double\" 'single' \\ backslash {{ not_a_tag }} {% raw %} [INST] \ttab\nnew line"},{"role":"assistant","content":"<|im_end|> </s> \u00e9\u4e2d\u6587"}]`, ""},
	{"empty-content", `[{"role":"user","content":""},{"role":"assistant","content":""},{"role":"user","content":"next"}]`, ""},
	{"padded-content", `[{"role":"system","content":"  sys with spaces \n"},{"role":"user","content":"\n\n  padded user  \t"},{"role":"assistant","content":"  padded answer  "}]`, ""},
	{"system-only", `[{"role":"system","content":"Only a system prompt."}]`, ""},
	{"no-messages", `[]`, ""},
	{"not-alternating", `[{"role":"user","content":"one"},{"role":"user","content":"two"}]`, ""},
	{"custom-date", `[{"role":"user","content":"What day is it?"}]`, `{"date_string":"01 Jan 2025"}`},
}

// toolConversations only go to templates that understand tools.
var toolConversations = []conversation{
	{"tools-in-system", `[{"role":"system","content":"You can call tools."},{"role":"user","content":"Weather in Paris?"}]`,
		`{"tools":[{"type":"function","function":{"name":"get_weather","description":"Get the weather","parameters":{"type":"object","properties":{"city":{"type":"string","description":"City name"},"unit":{"type":"string","enum":["c","f"]}},"required":["city"]}}}],"tools_in_user_message":false}`},
	{"tools-in-user", `[{"role":"user","content":"Weather in Paris?"}]`,
		`{"tools":[{"type":"function","function":{"name":"get_weather","description":"Get the weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]}`},
	{"tool-call-round-trip", `[{"role":"user","content":"Weather in Paris?"},{"role":"assistant","content":"","tool_calls":[{"type":"function","function":{"name":"get_weather","arguments":{"city":"Paris","days":3}}}]},{"role":"tool","content":"{\"temp\": 21}"},{"role":"tool","content":"sunny"},{"role":"assistant","content":"It is 21 and sunny."}]`,
		`{"tools":[{"type":"function","function":{"name":"get_weather","description":"Get the weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],"tools_in_user_message":false}`},
}

// synthetic templates exercise one feature each; all get synthContext.
var synthetic = map[string]string{
	"loop-vars":        `{% for x in items %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.length }}{% if loop.first %}F{% endif %}{% if loop.last %}L{% endif %}={{ x }};{% endfor %}`,
	"loop-prev-next":   `{% for x in items %}[{{ loop.previtem }}<{{ x }}>{{ loop.nextitem }}]{% endfor %}`,
	"for-else":         `{% for x in empty %}never{% else %}empty{% endfor %}|{% for x in items %}{{ x }}{% else %}no{% endfor %}`,
	"for-filter":       `{% for m in messages if m.role == 'user' %}{{ loop.index }}:{{ m.content }};{% endfor %}`,
	"tuple-unpack":     `{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{% for k, v in d|items %}{{ k }}{% endfor %}|{% for k in d %}{{ k }}{% endfor %}`,
	"break-continue":   `{% for x in items %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}`,
	"nested-loops":     `{% for a in [1, 2] %}{% for b in ['x', 'y'] %}{{ a }}{{ b }}{{ loop.index }}{% endfor %}({{ loop.index }}){% endfor %}`,
	"set-scoping":      `{% set x = 'outer' %}{% for i in items %}{% set x = 'inner' %}{% endfor %}{{ x }}{% if true %}{% set y = 'in-if' %}{% endif %}{{ y }}`,
	"block-set":        `{% set greeting %}Hello {{ name }}!{% endset %}[{{ greeting }}]`,
	"namespace":        `{% set ns = namespace(found=false, n=0) %}{% for m in messages %}{% if m.role == 'system' %}{% set ns.found = true %}{% endif %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}{% if ns.found %} found{% endif %}`,
	"macro":            `{% macro greet(who, greeting='Hello') %}{{ greeting }}, {{ who }}!{% endmacro %}{{ greet('Bob') }} {{ greet('Al', greeting='Hi') }} {{ greet(name) }}`,
	"call-block":       `{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}inner {{ name }}{% endcall %}`,
	"slices":           `{{ items[1:]|join(',') }}|{{ items[:2]|join(',') }}|{{ items[::-1]|join(',') }}|{{ items[-2:]|join(',') }}|{{ items[1:4:2]|join(',') }}|{{ name[1:3] }}|{{ name[::-1] }}|{{ items[-1] }}|{{ name[0] }}`,
	"arithmetic":       `{{ 1 + 2 * 3 - 4 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ 2 ** 10 }} {{ 7 / 2 }} {{ 4 / 2 }} {{ (1 + 2) * 3 }} {{ -n + 1 }} {{ 1.5 + 1 }} {{ n * 2.5 }}`,
	"strings":          `{{ 'a' ~ n ~ 'b' }} {{ 'x' + 'y' }} {{ "dq" }} {{ 'it\'s' }} {{ "tab\there" }} {{ 'a' 'b' }} {{ 'line\nbreak' }} {{ '\u00e9\x41' }}`,
	"comparisons":      `{% if 1 < 2 and 2 <= 2 and 3 > 2 and 3 >= 3 and 'a' != 'b' and not false and 1 == 1.0 %}ok{% endif %}{% if 'b' != 'a' %}str{% endif %}{% if false or none or '' or 0 or [] %}bad{% else %}falsy{% endif %}`,
	"membership":       `{% if 'ell' in 'hello' %}1{% endif %}{% if 2 in [1, 2] %}2{% endif %}{% if 'k' in d %}3{% endif %}{% if 'z' not in d %}4{% endif %}{% if 'tool_calls' in messages[0] %}5{% endif %}{% if 9 not in items %}6{% endif %}`,
	"tests":            `{% if name is string %}s{% endif %}{% if n is number %}n{% endif %}{% if n is integer %}i{% endif %}{% if d is mapping %}m{% endif %}{% if items is iterable %}it{% endif %}{% if nothing is none %}N{% endif %}{% if missing is not defined %}U{% endif %}{% if missing is undefined %}u{% endif %}{% if name is defined %}D{% endif %}{% if n is odd %}o{% endif %}{% if 2 is even %}e{% endif %}{% if flag is true %}T{% endif %}{% if d is not string %}!s{% endif %}{% if flag is boolean %}b{% endif %}`,
	"ternary":          `{{ 'yes' if flag else 'no' }} {{ 'a' if not flag else 'b' if n == 3 else 'c' }} {{ (name if name else 'anon') | upper }}`,
	"undefined":        `[{{ missing }}][{{ missing.attr }}][{{ missing['k'] }}][{{ d.nope }}]{% if missing %}bad{% endif %}{% if not missing.x %}falsy{% endif %}[{{ missing | default('dflt') }}][{{ name | default('unused') }}]`,
	"filters-str":      `{{ '  hi  '|trim }}|{{ 'abc'|upper }}|{{ 'ABC'|lower }}|{{ 'hello world'|title }}|{{ 'hello'|capitalize }}|{{ 'a-b-c'|replace('-', '+') }}|{{ name|length }}|{{ 42|string }}|{{ '42'|int + 1 }}|{{ 3.9|int }}|{{ 'x'|safe }}|{{ 'a\nb'|indent(2) }}`,
	"filters-list":     `{{ items|join(', ') }}|{{ items|first }}|{{ items|last }}|{{ items|length }}|{{ items|list|length }}|{{ words|sort|join(',') }}|{{ items|reverse|join }}|{{ items|unique|join(',') }}|{{ empty|length }}|{{ d|length }}|{{ (items + [9])|join }}`,
	"filters-attr":     `{{ messages|selectattr('role', 'equalto', 'user')|map(attribute='content')|join('|') }}/{{ messages|rejectattr('role', 'equalto', 'user')|list|length }}/{{ messages|map(attribute='role')|join(',') }}/{{ messages|selectattr('content')|list|length }}`,
	"tojson":           `{{ d|tojson }}|{{ nested|tojson }}|{{ nested|tojson(indent=2) }}|{{ "é\n\"q\" \\ </tag>"|tojson }}|{{ items|tojson }}|{{ empty|tojson(indent=4) }}|{{ none|tojson }}|{{ flag|tojson }}`,
	"str-methods":      `{{ '  x  '.strip() }}|{{ '  x  '.lstrip() }}.|{{ '  x  '.rstrip() }}.|{{ 'a,b,c'.split(',')|join('+') }}|{{ ' a  b '.split()|join('+') }}|{{ 'Hello'.upper() }}{{ 'Hello'.lower() }}|{{ 'hello there'.title() }}|{{ 'aXa'.replace('a', 'b') }}|{% if name.startswith('Al') %}sw{% endif %}{% if name.endswith('ce') %}ew{% endif %}`,
	"dict-methods":     `{{ d.get('k') }}|{{ d.get('zz', 'def') }}|{% for k in d.keys() %}{{ k }}{% endfor %}|{% for v in d.values() %}{{ v }}{% endfor %}|{{ d['k'] }}{{ d.k }}`,
	"literals":         `{% set l = [1, 'two', [3]] %}{{ l|length }}{{ l[1] }}{{ l[2][0] }}{% set m = {'a': 1, 'b': {'c': 'deep'}} %}{{ m.b.c }}{{ m['a'] }}{% if True and not False and None is none %}TFN{% endif %}{% set t = (1, 2) %}{{ t[1] }}`,
	"whitespace-ctl":   "a  {{- 'b' -}}  c\n  {%- if true %} d {% endif -%}\n  e {#- comment -#} f\n{{ 'g' }}  \n",
	"trim-lstrip":      "line1\n    {% if true %}\n    inside\n    {% endif %}\n  {# comment #}\nend\n{% for x in items %}\n  - {{ x }}\n{% endfor %}\ndone",
	"multiline-expr":   "{{\n  name\n  ~ '!'\n}}{%\n  if\n  flag\n%}yes{% endif %}",
	"raise":            `{% if n > 1 %}{{ raise_exception('n is too big: ' ~ n) }}{% endif %}never`,
	"generation":       "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% endgeneration %}{% else %}{{ m.content }}{% endif %}|{% endfor %}",
	"filter-chain-exp": `{{ messages[0].content|trim|upper }} {{ (messages|length) - 1 }} {% if messages|length > 1 %}many{% endif %}`,
	"range":            `{% for i in range(3) %}{{ i }}{% endfor %}|{% for i in range(1, 10, 3) %}{{ i }}{% endfor %}|{{ range(5)|length }}`,
}

const synthContext = `{"items":[1,2,3,4,5],"empty":[],"words":["pear","Apple","banana","apple"],"name":"Alice","n":3,"flag":true,"nothing":null,
"d":{"k":"v","a":1},"nested":{"list":[1,"two",{"three":3}],"s":"x\ty","b":false,"z":null,"e":{}},
"messages":[{"role":"system","content":"  Sys  "},{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"},{"role":"user","content":""}]}`

type refCase struct {
	Name     string          `json:"-"`
	Template string          `json:"template"`
	Context  json.RawMessage `json:"context"`
}

type refResult struct {
	Output *string `json:"output"`
	Error  *string `json:"error"`
}

func mergeJSONObjects(t testing.TB, objs ...string) json.RawMessage {
	t.Helper()
	var parts []string
	for _, o := range objs {
		o = strings.TrimSpace(o)
		if o == "" || o == "{}" {
			continue
		}
		require.True(t, strings.HasPrefix(o, "{") && strings.HasSuffix(o, "}"), o)
		parts = append(parts, strings.TrimSpace(o[1:len(o)-1]))
	}
	return json.RawMessage("{" + strings.Join(parts, ",") + "}")
}

func referenceCases(t testing.TB) []refCase {
	fixtures := loadFixtures(t)
	names := make([]string, 0, len(fixtures))
	for n := range fixtures {
		names = append(names, n)
	}
	sort.Strings(names)
	var cases []refCase
	special := `{"bos_token":"<s>","eos_token":"</s>"}`
	for _, name := range names {
		convs := conversations
		if name == "llama3.1" || name == "qwen2.5" {
			convs = append(append([]conversation(nil), conversations...), toolConversations...)
		}
		for _, c := range convs {
			for _, gen := range []bool{false, true} {
				base := fmt.Sprintf(`{"messages":%s,"add_generation_prompt":%v}`, c.messages, gen)
				cases = append(cases, refCase{
					Name:     fmt.Sprintf("%s/%s/gen=%v", name, c.name, gen),
					Template: fixtures[name],
					Context:  mergeJSONObjects(t, base, special, c.extra),
				})
			}
		}
	}
	snames := make([]string, 0, len(synthetic))
	for n := range synthetic {
		snames = append(snames, n)
	}
	sort.Strings(snames)
	for _, n := range snames {
		cases = append(cases, refCase{Name: "synthetic/" + n, Template: synthetic[n], Context: json.RawMessage(synthContext)})
	}
	return cases
}

func requireReference(t *testing.T) string {
	node, err := exec.LookPath("node")
	if err != nil {
		testref.Missing(t, "Node.js (for @huggingface/jinja)")
	}
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "@huggingface", "jinja", "package.json")); err != nil {
		testref.Missing(t, "@huggingface/jinja (runtime/tokenizer/chattemplate/testdata/node)")
	}
	return node
}

func runReference(t *testing.T, node string, cases []refCase) []refResult {
	in, err := json.Marshal(cases)
	require.NoError(t, err)
	cmd := exec.Command(node, "render.mjs")
	cmd.Dir = nodeDir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "node render.mjs: %s", stderr.String())
	var res []refResult
	require.NoError(t, json.Unmarshal(out, &res))
	require.Len(t, res, len(cases))
	return res
}

// renderCase renders a case the way the reference does: HF settings and the
// JSON context with key order preserved.
func renderCase(t testing.TB, c refCase) (string, error) {
	tpl, err := jinja.ParseOptions(c.Template, jinja.HFOptions)
	if err != nil {
		return "", err
	}
	v, err := jinja.DecodeJSON(c.Context)
	require.NoError(t, err)
	d := v.(*jinja.Dict)
	ctx := map[string]any{}
	for _, k := range d.Keys() {
		ctx[k], _ = d.Get(k)
	}
	return tpl.Render(ctx)
}

func TestReferenceDifferential(t *testing.T) {
	node := requireReference(t)
	cases := referenceCases(t)
	res := runReference(t, node, cases)
	outputs, errorsBoth := 0, 0
	for i, c := range cases {
		got, err := renderCase(t, c)
		want := res[i]
		switch {
		case want.Error != nil && err != nil:
			errorsBoth++
			// A raise_exception message must surface in our error as well.
			var re *jinja.RaiseError
			if asRaise(err, &re) {
				require.Contains(t, *want.Error, re.Message, c.Name)
			}
		case want.Error != nil:
			t.Errorf("%s: reference failed (%s) but we rendered %q", c.Name, *want.Error, got)
		case err != nil:
			t.Errorf("%s: we failed (%v) but reference rendered %q", c.Name, err, *want.Output)
		default:
			outputs++
			if got != *want.Output {
				t.Errorf("%s: output differs\n got: %q\nwant: %q", c.Name, got, *want.Output)
			}
		}
	}
	t.Logf("%d cases: %d identical outputs, %d errors on both sides", len(cases), outputs, errorsBoth)
	require.Greater(t, outputs, 100)
}

// TestRenderChatMatchesRender checks that RenderChat (Go Message values) gives
// the same output as rendering the equivalent JSON context.
func TestRenderChatMatchesRender(t *testing.T) {
	for name, src := range loadFixtures(t) {
		tpl, err := Parse(src)
		require.NoError(t, err, name)
		for _, c := range conversations {
			msgs, err := DecodeMessages([]byte(c.messages))
			require.NoError(t, err)
			var extra map[string]any
			if c.extra != "" {
				require.NoError(t, json.Unmarshal([]byte(c.extra), &extra))
			}
			for _, gen := range []bool{false, true} {
				special := map[string]string{"bos_token": "<s>", "eos_token": "</s>"}
				got, err1 := RenderChat(tpl, msgs, gen, special, extra)
				want, err2 := renderCase(t, refCase{Template: src, Context: mergeJSONObjects(t,
					fmt.Sprintf(`{"messages":%s,"add_generation_prompt":%v}`, c.messages, gen), `{"bos_token":"<s>","eos_token":"</s>"}`, c.extra)})
				require.Equal(t, err2 == nil, err1 == nil, "%s/%s: %v / %v", name, c.name, err1, err2)
				require.Equal(t, want, got, "%s/%s", name, c.name)
			}
		}
	}
}

func asRaise(err error, target **jinja.RaiseError) bool { return errors.As(err, target) }
