// Validates generated outputs against their JSON Schemas with ajv (draft 2020-12) and
// ajv-formats, the reference the Go differential tests compare with. Input: one JSON
// object per line, {"schema": <schema>, "text": "<output text>"}; output: one line per
// input, {"parses": bool, "valid": bool, "errors": "..."}. A schema ajv cannot compile
// is reported as {"schemaError": "..."}.
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { createInterface } from "node:readline";

const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
addFormats(ajv);
const cache = new Map();
const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of rl) {
  if (!line.trim()) continue;
  const { schema, text } = JSON.parse(line);
  const key = JSON.stringify(schema);
  let validate = cache.get(key);
  if (!validate) {
    try {
      validate = ajv.compile(schema);
    } catch (e) {
      console.log(JSON.stringify({ schemaError: String(e.message ?? e) }));
      continue;
    }
    cache.set(key, validate);
  }
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    console.log(JSON.stringify({ parses: false, valid: false, errors: String(e.message) }));
    continue;
  }
  const valid = validate(value);
  console.log(JSON.stringify({ parses: true, valid, errors: valid ? "" : ajv.errorsText(validate.errors) }));
}
