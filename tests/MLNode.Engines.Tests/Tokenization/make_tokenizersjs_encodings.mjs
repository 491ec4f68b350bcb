// Writes tokenizersjs_encodings.json: ids that tokenizers.js (npm @huggingface/tokenizers 0.2.0, an independent
// implementation that reproduces every case of the fixture's encodings.json) gives for strings the fixture lacks.
// Run: npm install @huggingface/tokenizers@0.2.0 && node make_tokenizersjs_encodings.mjs > tokenizersjs_encodings.json
import { Tokenizer } from "@huggingface/tokenizers";
import fs from "fs";
const dir = new URL("../../../../shared/fixtures/llm/tokenizer-tiny/", import.meta.url);
const tok = new Tokenizer(JSON.parse(fs.readFileSync(new URL("tokenizer.json", dir))), JSON.parse(fs.readFileSync(new URL("tokenizer_config.json", dir))));
const fixture = JSON.parse(fs.readFileSync(new URL("encodings.json", dir)));
for (const c of fixture.cases) {
  const ids = tok.encode(c.text, { add_special_tokens: false }).ids;
  if (JSON.stringify(ids) !== JSON.stringify(c.ids)) throw new Error(`tokenizers.js disagrees with the fixture on ${JSON.stringify(c.text)}`);
}
const texts = [
  "family 👨‍👩‍👧‍👦, flags 🇩🇪🇯🇵, skin tone 👍🏽, variation ❤️",
  "漢字かなカナ한국어 混合 text",
  "combining: a\u0301 e\u0300\u0323 o\u0308\u0304 q\u0307 Z\u0335",
  "NFD input: Cafe\u0301 nai\u0308ve A\u030A \u212B \u1100\u1161\u11A8",
  "whitespace \t\t  \n\n\n  \r\n \u00A0\u3000\u2028 end   ",
  "  \n  \n\n \t x\r\n\r\ny  ",
  "numbers 0 00 007 1,234,567.89 -3e10 ١٢٣ ½ Ⅻ",
  "supplementary letters 𝐀𝐁𝐂 𠀀𠀁x and digits 𝟏𝟐𝟑 a𝐀b",
  "العربية हिन्दी ไทย Ελληνικά Кириллица",
  "it's THEY'RE we'Ve I'd 'S 'll 'x ''s",
  "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
  "<|im_start|<|im_end|><<|endoftext|>>",
  "def f(x):\n\treturn {'a': [1, 2]}  # ok\n\n\nclass A:\n    pass\n",
  "!!!??? ... --- ___ *** ==> <= != ;;\n\n",
  "https://example.com/path?q=1&r=2#frag user@example.org",
  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa                                        bbbb",
  "\u0000\u0001\u001f\u007f\u0085\u00ad\u200b\u200d\ufeff",
];
// Its decode applies clean_up_tokenization_spaces, which HF tokenizers does not, so only the ids are kept.
const cases = texts.map(text => ({ text, ids: tok.encode(text, { add_special_tokens: false }).ids }));
console.log(JSON.stringify({ cases }, null, 1));
