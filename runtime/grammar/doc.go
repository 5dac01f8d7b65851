// Package grammar constrains generation: it compiles a JSON Schema, a regex, a list
// of choices or a tool-call format into byte-level automata, and a Matcher says,
// before each sampling step, which tokens of the vocabulary keep the output valid.
//
//	g, err := grammar.JSONSchema(schema, grammar.Options{})   // *SchemaError names a keyword it cannot enforce
//	v, err := grammar.NewVocab(pieces, eosIDs)                 // once per tokenizer
//	m := g.NewMatcher(v)                                       // per output
//	n := m.FillMask(bits, tokensLeft)                          // the allowed tokens, a bitmap
//	grammar.ApplyMask(logits, bits)                            // or Gather when few are allowed
//	err = m.Accept(tok)
//
// The engine does this for every request with engine.Request.Constraint set; the
// server compiles response_format, guided_json/regex/choice, structured_outputs and
// forced tool calls into grammars.
//
// # How
//
// Constraints compile to rules, each a DFA over bytes whose edges may call another
// rule (only where the language is recursive — generic JSON values, recursive $ref —
// or where a shared body keeps the automaton small); a parse state is a set of stacks
// of return nodes. For a vocabulary, every reachable node gets a table of the tokens
// it accepts, built once by walking a trie of the tokens (bind.go): tokens that stay
// inside the node's rule are decided for good there; the few that leave the rule
// before they end ("dependent" tokens) are resolved against the node they return to,
// also once per pair. Nodes that no token can tell apart share a table (a Moore
// refinement stopped at the token length), so counted chains (maxLength, maxItems)
// cost a table per distinct neighbourhood. A step's mask is then a copy of a table
// plus a few corrections: BenchmarkMask measures it (about 2 µs p50, 8-10 µs p99 at
// 128k tokens on the 2-core development machine; the whole row, mask applied, 7 µs
// p50 and 65-80 µs p99).
//
// Budget. FillMask takes the tokens left: a token is allowed only if the output can
// still be completed, end-of-sequence included, within what is left afterwards,
// counting one token per byte of the shortest completion (every byte on it has a
// single-byte token in the vocabularies Vireo serves). So an output ends by
// end-of-sequence within max_tokens whenever its shortest form fits: arrays without
// maxItems and open strings are closed in time, and white space between JSON tokens
// is bounded (at most one space, or a newline and up to MaxIndent spaces).
//
// # JSON Schema: what is enforced
//
//   - type (and lists of types), enum, const, anyOf, oneOf (only with provably
//     disjoint branches: different types, different enum/const values, or objects
//     with a required property whose enum/const values differ; other oneOf are
//     refused), allOf with one schema, $ref to JSON pointers in the document with
//     $defs/definitions (recursion included), true/false schemas;
//   - objects: properties (generated in schema order; optional ones may be left
//     out), required, additionalProperties (false, true or a schema; left
//     unspecified it generates no extra properties when properties are declared, any
//     when none are — both valid instances); extra property names never repeat a
//     declared name;
//   - arrays: items, minItems, maxItems (up to 4096);
//   - strings: minLength, maxLength (code points, as JSON Schema counts; up to 4096),
//     pattern (ECMAScript syntax, search semantics: unanchored unless ^/$; lookaround,
//     backreferences, word boundaries and anchors inside the pattern are refused),
//     format date-time, date, time, uuid, email and ipv4 (a subset of each format's
//     valid strings: e.g. dates never have February 29, times always carry a zone);
//     in strings with any of these, characters are written with only the escapes JSON
//     requires (so the text is the value the keywords see);
//   - integers: minimum, maximum, exclusiveMinimum, exclusiveMaximum, exactly, with
//     at most 15 digits (bounds beyond ±(10^15-1) only clamp);
//   - numbers: bounds exactly, as decimals of at most 15 significant digits (so they
//     stay exact and ordered as float64); bounds needing more digits are refused.
//     Unbounded numbers have at most 15 integer and 15 fraction digits and a
//     two-digit exponent.
//
// Annotations (title, description, default, examples, $comment, deprecated,
// readOnly, writeOnly, $schema, $id, contentMediaType, contentEncoding, x-*) are
// ignored. Every other keyword is a *SchemaError naming it: not, if/then/else,
// patternProperties, propertyNames, min/maxProperties, dependent*, unevaluated*,
// contains, uniqueItems, multipleOf, prefixItems, tuple items, other formats,
// remote or $anchor references, unknown keywords. enum/const combine only with type;
// anyOf/oneOf/$ref/allOf take no sibling constraints. Compiled automata are capped
// (Options.MaxStates, default 65,536 DFA nodes).
//
// # Limits
//
// Tokens that add no text (control tokens other than end-of-sequence) are never
// allowed. Stop token ids that are not end-of-sequence cannot be sampled under a
// constraint. Grammars of many long counted strings take a while to bind at 128k
// tokens (about 1 s for a schema with a 40-character string, an email and five
// array strings on the loaded development machine; spread over the cores and cached
// per schema and vocabulary).
package grammar
