// Package jinja is the Jinja template interpreter behind chat templates: a lexer,
// parser, AST and evaluator with Python Jinja2's semantics as transformers
// configures them, the filters and tests chat templates use, and an
// order-keeping JSON reader for template values.
//
//	t, err := jinja.ParseOptions(src, jinja.HFOptions) // *SyntaxError names line:col and what was expected
//	out, err := t.Render(map[string]any{...})          // values: Go scalars, slices, maps, *Dict
//
// Parse uses Jinja's defaults (trim_blocks and lstrip_blocks off); HFOptions turns
// both on, as transformers' apply_chat_template does. Package chattemplate builds
// chat rendering on top of it.
//
// # Language
//
// Supported: {{ }}, {% %}, {# #}, whitespace control ({%- -%} {{- -}} {#- -#}
// and the + modifiers), raw blocks; if/elif/else, for (loop.index, index0,
// revindex, revindex0, first, last, length, previtem, nextitem, cycle; for-else;
// "for x in xs if cond"; tuple unpacking), break/continue, set (names, tuples,
// namespace attributes, block sets with filters), macro (defaults, keyword
// arguments, varargs, kwargs), call blocks with caller(), filter blocks, do, and
// transformers' {% generation %} tag (rendered as its body). Expressions:
// literals (strings with Python escapes, ints, floats, true/false/none in either
// case, lists, tuples, dicts), attribute and subscript access, slices, + - * /
// // % ** ~, chained comparisons, and/or/not, in/not in, "is" tests, a if c else
// b, filters, and calls to globals (range, namespace, dict, raise_exception,
// strftime_now), macros and methods of strings (strip, lstrip, rstrip, upper,
// lower, title, capitalize, startswith, endswith, split, replace, join, find,
// count, splitlines, is*), dicts (items, keys, values, get) and lists (index,
// count). Filters: abs, attr, batch, capitalize, count, default/d, dictsort,
// escape/e, first, float, format, indent, int, items, join, last, length, list,
// lower, map, max, min, reject, rejectattr, replace, reverse, round, safe,
// select, selectattr, sort, string, strip (alias of trim), sum, title, tojson
// (transformers' version: indent, ensure_ascii, separators, sort_keys; no HTML
// escaping), trim, unique, upper, wordcount. Unknown filters and tests are
// syntax errors; calling an unknown function is a render error naming it.
//
// Semantics follow Python's Jinja2 as transformers configures it: values print
// as Python's str() (True, None, ['a', 1], {'k': 'v'}, 2.0), == is Python
// equality, undefined variables render as "" and are falsy, and - as the task
// asked, unlike Jinja2, which raises - an attribute or item of an undefined
// value is undefined too. raise_exception(msg) fails the render with a
// *RaiseError carrying msg. strftime_now reads the time from the NowKey context
// variable when present, so renders can be deterministic.
//
// Runaway templates cannot hang or exhaust memory: Options.MaxSteps bounds the
// work of a render (loop iterations, expression evaluations, and per-item work
// of filters, range and list operations), Options.MaxOutput bounds produced
// text and intermediate strings, macro recursion is limited to 100 levels and
// parse nesting to 200; exceeding any of them returns a *LimitError.
//
// # Known differences from @huggingface/jinja
//
// The differential test in runtime/tokenizer/chattemplate renders templates with
// this package and with @huggingface/jinja (the engine transformers.js uses).
// Where that engine departs from Python Jinja2 this package follows Python, so
// the differential test avoids these cases: printing booleans and none (JS
// prints "true" and nothing), printing lists and dicts (JS prints JSON), ==
// between different types (JS uses loose equality, so "" == false and Llama 2
// drops an empty system prompt there), string ordering comparisons and string
// repetition (unsupported in JS), unique and capitalize (JS is case-sensitive
// and does not lowercase), the d alias and reject/select filters (missing in
// JS), the precedence of ~ (Jinja2 binds it tighter than + and -), str methods
// with a chars argument, and tojson of floats with no fraction (JS prints 1,
// Python 1.0).
//
// Not supported: include/import/extends/block (chat templates are
// self-contained), recursive loops, *args/**kwargs unpacking in calls, the
// full str % formatting language, Jinja2's newline normalisation of \r\n in
// template source, and Python's arbitrary-precision integers (int64 overflow is
// an error).
package jinja
