package chattemplate

import (
	"testing"

	"github.com/vireo-ai/vireo/internal/jinja"
)

// FuzzParse parses arbitrary sources with both settings and renders what
// parses under tight limits: no input may panic or hang. The seed corpus is
// the fixture templates and the synthetic feature templates, so plain
// `go test` runs them as a regression test.
func FuzzParse(f *testing.F) {
	for _, src := range loadFixtures(f) {
		f.Add(src)
	}
	for _, src := range synthetic {
		f.Add(src)
	}
	for _, src := range []string{
		"", "{", "{{", "{%", "{#", "{{}}", "{%%}", "{{ -}}", "{%- -%}", "{% raw %}", "{% raw %}{% endraw",
		"{{ 'unterminated", "{{ '\\x4' }}", "{{ a[::0] }}", "{{ (((( }}", "{% for %}", "{% set %}",
		"{% macro m( %}", "{% call %}", "{{ x is }}", "{{ x | }}", "{{ {'a': } }}", "{{ 1 if }}",
		"{% if %}{% elif %}{% else %}{% endif %}", "{{ '\xff' }}\xff", "{{ range(-5) }}",
		"{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
	} {
		f.Add(src)
	}
	ctx := map[string]any{
		"messages":              messageValues("system", "s", "user", "u", "assistant", "a"),
		"add_generation_prompt": true,
		"bos_token":             "<s>",
		"eos_token":             "</s>",
		"items":                 []int{1, 2, 3},
		"d":                     map[string]any{"k": "v", "n": 1},
		"name":                  "Alice",
		"n":                     3,
		jinja.NowKey:            "2024-01-02",
	}
	f.Fuzz(func(t *testing.T, src string) {
		for _, o := range []jinja.Options{{}, jinja.HFOptions} {
			o.MaxSteps, o.MaxOutput = 20_000, 1<<16
			tpl, err := jinja.ParseOptions(src, o)
			if err != nil {
				if _, ok := err.(*jinja.SyntaxError); !ok {
					t.Fatalf("Parse returned %T, want *jinja.SyntaxError: %v", err, err)
				}
				continue
			}
			_, _ = tpl.Render(ctx)
		}
	})
}

// messageValues are role, content pairs as a template sees messages.
func messageValues(kv ...string) []any {
	var out []any
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, jinja.NewDict().Set("role", kv[i]).Set("content", kv[i+1]))
	}
	return out
}
