package grammar

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestToolCallsGrammar(t *testing.T) {
	_, v := storiesVocab(t)
	tools := []Tool{
		{Name: "get_weather", Parameters: []byte(`{"type":"object","properties":{"city":{"type":"string","maxLength":20},"unit":{"enum":["c","f"]}},"required":["city","unit"],"additionalProperties":false}`)},
		{Name: "now"},
		{Name: "tree", Parameters: []byte(`{"$defs":{"n":{"type":"object","properties":{"k":{"type":"array","items":{"$ref":"#/$defs/n"},"maxItems":2}}}},"$ref":"#/$defs/n"}`)},
	}
	rng := rand.New(rand.NewPCG(41, 42))
	for _, parallel := range []bool{false, true} {
		g, err := ToolCalls(tools, ToolCallOptions{Parallel: parallel})
		require.NoError(t, err)
		multi := false
		for i := 0; i < 40; i++ {
			text, _, ended := randomWalk(t, g, v, rng, 200, 0.3)
			require.True(t, ended, text)
			calls, err := ParseToolCalls(text)
			require.NoError(t, err, text)
			if len(calls) > 1 {
				require.True(t, parallel, "several calls without parallel: %q", text)
				multi = true
			}
			for _, call := range calls {
				var args map[string]any
				require.NoError(t, json.Unmarshal([]byte(call.Arguments), &args), text)
				require.Contains(t, []string{"get_weather", "now", "tree"}, call.Name)
				if call.Name == "now" {
					require.Empty(t, args)
				}
				if call.Name == "get_weather" {
					require.Contains(t, []string{"c", "f"}, args["unit"])
				}
			}
		}
		require.Equal(t, parallel, multi)
	}
	_, err := ToolCalls([]Tool{{Name: "bad name"}}, ToolCallOptions{})
	require.ErrorContains(t, err, "must match")
	_, err = ToolCalls([]Tool{{Name: "f", Parameters: []byte(`{"type":"object","patternProperties":{}}`)}}, ToolCallOptions{})
	var te *ToolSchemaError
	require.ErrorAs(t, err, &te)
	require.Equal(t, "f", te.Tool)
	require.Equal(t, "patternProperties", te.Err.Keyword)
	// A response format alongside: either a call or an instance of the schema.
	g, err := ToolCalls(tools[:1], ToolCallOptions{Or: []byte(`{"type":"object","properties":{"answer":{"type":"integer"}},"required":["answer"],"additionalProperties":false}`)})
	require.NoError(t, err)
	bv := byteVocab(t)
	require.True(t, accepts(g, bv, `{"answer": 4}`))
	require.True(t, accepts(g, bv, `{"name": "get_weather", "parameters": {"city": "Oslo", "unit": "c"}}`))
	require.False(t, accepts(g, bv, `{"name": "get_weather"}`))
}

func TestParseToolCalls(t *testing.T) {
	calls, err := ParseToolCalls(` {"name": "f", "parameters": {"a": [1, "x;y"]}}; {"name":"g","arguments":{}}
`)
	require.NoError(t, err)
	require.Equal(t, []ParsedCall{{"f", `{"a": [1, "x;y"]}`}, {"g", `{}`}}, calls)
	for _, bad := range []string{``, `{}`, `{"name": "f"`, `{"name": "f", "parameters": 3}`, `{"name": "f"} trailing`, `hello`, `{"name":"f","x":1}`} {
		_, err := ParseToolCalls(bad)
		require.Error(t, err, bad)
	}
}
