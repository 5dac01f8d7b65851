// Structured outputs and tool calls through the official openai npm client against a
// Vireo server, every result checked with ajv. Usage: node structured.mjs <baseURL>;
// prints one JSON object (TestNodeOpenAIStructured starts the server and checks it).
import OpenAI from "openai";
import Ajv2020 from "ajv/dist/2020.js";

const baseURL = process.argv[2];
if (!baseURL) {
  console.error("usage: node structured.mjs <baseURL>");
  process.exit(2);
}
const client = new OpenAI({ baseURL: baseURL + "/v1", apiKey: "sk-node", maxRetries: 0, timeout: 120_000 });
const model = "stories260K";
const ajv = new Ajv2020({ strict: false, allErrors: true });
const check = (schema, value) => {
  const v = ajv.compile(schema);
  return v(value) ? "" : ajv.errorsText(v.errors);
};
const out = {};
const messages = [
  { role: "system", content: "You answer in JSON." },
  { role: "user", content: "Tell me about a girl named Lily." },
];

// chat.completions.parse with a json_schema: the SDK parses the content itself.
const person = {
  type: "object",
  properties: {
    name: { type: "string", maxLength: 20 },
    age: { type: "integer", minimum: 0, maximum: 120 },
    hobbies: { type: "array", items: { type: "string", maxLength: 12 }, maxItems: 3 },
    mood: { enum: ["happy", "sad", null] },
  },
  required: ["name", "age", "hobbies", "mood"],
  additionalProperties: false,
};
const parsed = await client.chat.completions.parse({
  model,
  messages,
  max_tokens: 256,
  temperature: 0.7,
  seed: 1,
  response_format: { type: "json_schema", json_schema: { name: "person", schema: person, strict: true } },
});
const pm = parsed.choices[0].message;
out.parse = { parsed: pm.parsed, content: pm.content, finish_reason: parsed.choices[0].finish_reason, errors: check(person, pm.parsed) };

// tools with tool_choice "required": the call's arguments validate.
// (Small: stories260K has a 512-token context and a 512-token vocabulary, and the
// tools are listed in the prompt.)
const weather = { type: "object", properties: { city: { type: "string", maxLength: 12 }, unit: { enum: ["c", "f"] } }, required: ["city", "unit"] };
const clock = { type: "object", properties: { zone: { type: "string", pattern: "^[A-Z][a-z]+$" } }, required: ["zone"] };
const tools = [
  { type: "function", function: { name: "weather", parameters: weather } },
  { type: "function", function: { name: "time", parameters: clock } },
];
const schemas = { weather, time: clock };
const checkCalls = (calls) =>
  (calls ?? []).map((c) => {
    let args;
    try {
      args = JSON.parse(c.function.arguments);
    } catch (e) {
      return `arguments of ${c.function.name} do not parse: ${e.message}`;
    }
    return schemas[c.function.name] ? check(schemas[c.function.name], args) : `unknown tool ${c.function.name}`;
  });
const req = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "What is the weather in Paris?" }],
  tools,
  tool_choice: "required",
  max_tokens: 160,
  temperature: 0.9,
  seed: 5,
});
const rm = req.choices[0].message;
out.required = { finish_reason: req.choices[0].finish_reason, content: rm.content, tool_calls: rm.tool_calls, errors: checkCalls(rm.tool_calls) };

// A named function, no parallel calls.
const named = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "What time is it in Tokyo?" }],
  tools,
  tool_choice: { type: "function", function: { name: "time" } },
  parallel_tool_calls: false,
  max_tokens: 160,
  temperature: 1,
  seed: 7,
});
const nm = named.choices[0].message;
out.named = { finish_reason: named.choices[0].finish_reason, tool_calls: nm.tool_calls, errors: checkCalls(nm.tool_calls) };

// Streaming tool calls: the deltas by hand, and the SDK's stream helper.
const stream = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "Weather and time in Oslo?" }],
  tools,
  tool_choice: "required",
  max_tokens: 160,
  temperature: 0.9,
  seed: 9,
  stream: true,
});
const calls = [];
let chunks = 0;
let finish = null;
for await (const chunk of stream) {
  chunks++;
  for (const ch of chunk.choices) {
    for (const tc of ch.delta?.tool_calls ?? []) {
      calls[tc.index] ??= { id: null, type: null, function: { name: null, arguments: "" } };
      const c = calls[tc.index];
      if (tc.id) c.id = tc.id;
      if (tc.type) c.type = tc.type;
      if (tc.function?.name) c.function.name = tc.function.name;
      c.function.arguments += tc.function?.arguments ?? "";
    }
    if (ch.finish_reason) finish = ch.finish_reason;
  }
}
out.stream = { finish_reason: finish, chunks, tool_calls: calls, errors: checkCalls(calls) };
const helper = client.chat.completions.stream({
  model,
  messages: [{ role: "user", content: "Weather in Rome?" }],
  tools,
  tool_choice: "required",
  max_tokens: 160,
  seed: 11,
});
const final = await helper.finalChatCompletion();
out.helper = { finish_reason: final.choices[0].finish_reason, tool_calls: final.choices[0].message.tool_calls, errors: checkCalls(final.choices[0].message.tool_calls) };

// The round trip: the call and its result go back as assistant and tool messages.
const call = rm.tool_calls[0];
const after = await client.chat.completions.create({
  model,
  messages: [
    { role: "user", content: "What is the weather in Paris?" },
    { role: "assistant", content: null, tool_calls: [call] },
    { role: "tool", tool_call_id: call.id, content: JSON.stringify({ temperature: 21, sky: "clear" }) },
  ],
  tools,
  max_tokens: 20,
  temperature: 0,
});
out.round_trip = { finish_reason: after.choices[0].finish_reason, content: after.choices[0].message.content };

// An unsupported schema keyword is a 400 naming it.
try {
  await client.chat.completions.create({
    model,
    messages,
    response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "object", propertyNames: { pattern: "^a" } } } },
  });
  out.refused = null;
} catch (e) {
  out.refused = { status: e.status, param: e.param ?? e.error?.param ?? null, message: e.message };
}
console.log(JSON.stringify(out));
