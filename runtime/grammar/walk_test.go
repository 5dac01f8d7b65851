package grammar

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRandomWalkSmoke(t *testing.T) {
	_, v := storiesVocab(t)
	schemas := []string{
		`{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":0,"maximum":120}},"required":["name","age"],"additionalProperties":false}`,
		`{"type":"array","items":{"type":"number","minimum":-1.5,"exclusiveMaximum":2.25},"minItems":1,"maxItems":4}`,
		`{"type":"string","pattern":"^[a-z]+@[a-z]+\\.com$"}`,
		`{"type":"string","format":"date-time"}`,
		`{"enum":["red","green",3,null,{"a":[1,2]}]}`,
		`{"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},"kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["v"]}},"$ref":"#/$defs/node"}`,
		`{"type":"object"}`,
		`{"type":"string","minLength":3,"maxLength":5}`,
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range schemas {
		g, err := JSONSchema([]byte(s), Options{})
		require.NoError(t, err, s)
		t.Logf("%s: %v", s, g)
		for i := 0; i < 5; i++ {
			text, n, ended := randomWalk(t, g, v, rng, 128, 0.3)
			t.Logf("  %d %v %q", n, ended, text)
			require.True(t, ended, "did not end: %q", text)
			require.True(t, json.Valid([]byte(text)), "invalid JSON %q", text)
		}
	}
}
