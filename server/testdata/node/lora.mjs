// LoRA adapters through the official openai npm client against a Vireo server started
// with runtime adapter updating: list, load, generate with "model" set to the adapter
// (a completion and a streamed chat), unload, and the errors the client raises.
// Usage: node lora.mjs <baseURL> <lora_path>; prints one JSON object
// (TestNodeOpenAILoRA starts the server and checks it).
import OpenAI from "openai";

const [baseURL, loraPath] = process.argv.slice(2);
if (!baseURL || !loraPath) {
  console.error("usage: node lora.mjs <baseURL> <lora_path>");
  process.exit(2);
}
const client = new OpenAI({ baseURL: baseURL + "/v1", apiKey: "sk-node", maxRetries: 0, timeout: 60_000 });
const out = {};
const models = async () => {
  const ms = [];
  for await (const m of client.models.list()) ms.push({ id: m.id, parent: m.parent ?? null });
  return ms;
};
const failure = async (f) => {
  try {
    await f();
    return null;
  } catch (e) {
    return { status: e.status ?? null, message: e.message };
  }
};

out.before = await models();
out.load = await client.post("/load_lora_adapter", { body: { lora_name: "poet", lora_path: loraPath } });
out.after = await models();
const comp = await client.completions.create({ model: "poet", prompt: "Once upon a time", max_tokens: 32, temperature: 0, ignore_eos: true });
out.completion = { model: comp.model, text: comp.choices[0].text };
const stream = await client.chat.completions.create({
  model: "poet",
  messages: [{ role: "user", content: "Tell me a story." }],
  max_tokens: 24,
  temperature: 0,
  stream: true,
});
let text = "";
let model = null;
for await (const chunk of stream) {
  model = chunk.model;
  for (const c of chunk.choices) text += c.delta?.content ?? "";
}
out.stream = { model, text };
out.bad_load = await failure(() => client.post("/load_lora_adapter", { body: { lora_name: "x", lora_path: "../escape" } }));
out.unload = await client.post("/unload_lora_adapter", { body: { lora_name: "poet" } });
out.final = await models();
out.gone = await failure(() => client.completions.create({ model: "poet", prompt: "Once", max_tokens: 2 }));
console.log(JSON.stringify(out));
