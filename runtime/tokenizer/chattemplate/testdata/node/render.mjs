// Reference renderer for the chattemplate differential test.
// Reads JSON from stdin: either {"template": ..., "context": {...}} or an array
// of such objects, and writes a JSON array of {"output": string} or
// {"error": string} results (one per case) to stdout.
import { Template } from "@huggingface/jinja";

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
	const parsed = JSON.parse(input);
	const cases = Array.isArray(parsed) ? parsed : [parsed];
	const cache = new Map();
	const results = cases.map(({ template, context }) => {
		try {
			let t = cache.get(template);
			if (!t) {
				t = new Template(template);
				cache.set(template, t);
			}
			return { output: t.render(context ?? {}) };
		} catch (err) {
			return { error: String(err && err.message ? err.message : err) };
		}
	});
	process.stdout.write(JSON.stringify(Array.isArray(parsed) ? results : results[0]));
});
