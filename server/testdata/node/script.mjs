// Runs the official openai npm client against a Vireo server and prints one JSON
// object with what it got. Usage: node script.mjs <baseURL> (the Go test
// TestNodeOpenAIClient starts the server and checks the output).
import OpenAI from "openai";

const baseURL = process.argv[2];
if (!baseURL) {
  console.error("usage: node script.mjs <baseURL>");
  process.exit(2);
}
const client = new OpenAI({ baseURL: baseURL + "/v1", apiKey: "sk-node", maxRetries: 0, timeout: 60_000 });
const model = "stories260K";
const out = {};

const comp = await client.completions.create({
  model,
  prompt: "Once upon a time",
  max_tokens: 48,
  temperature: 0,
  ignore_eos: true, // a vLLM extension: the client passes unknown params through
});
out.completion = { text: comp.choices[0].text, finish_reason: comp.choices[0].finish_reason, usage: comp.usage };

const params = {
  model,
  messages: [
    { role: "system", content: "You tell stories." },
    { role: "user", content: "Tell me about a dog." },
  ],
  max_tokens: 40,
  temperature: 0.8,
  top_p: 0.95,
  seed: 99,
};
const chat = await client.chat.completions.create(params);
out.chat = {
  text: chat.choices[0].message.content,
  role: chat.choices[0].message.role,
  finish_reason: chat.choices[0].finish_reason,
  usage: chat.usage,
};

const stream = await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
let text = "";
let chunks = 0;
let finish = null;
let usage = null;
for await (const chunk of stream) {
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) {
    text += c.delta?.content ?? "";
    if (c.finish_reason) finish = c.finish_reason;
    chunks++;
  }
}
out.stream = { text, chunks, finish_reason: finish, usage };

try {
  await client.chat.completions.create({ ...params, prediction: { type: "content", content: "Once" } });
  out.unsupported_error = null;
} catch (e) {
  out.unsupported_error = { status: e.status, param: e.param ?? e.error?.param ?? null, message: e.message };
}

console.log(JSON.stringify(out));
