import fs from 'node:fs';
import path from 'node:path';

/**
 * A byte-level tokenizer without merges (every byte one token, like GPT-2's byte-level BPE before merges) plus
 * ChatML's special tokens, written as a standard tokenizer.json with a ChatML chat template, so the organism
 * loads through the same path as any Hub checkpoint.
 */

export const SPECIAL_TOKENS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
export const BYTE_VOCAB_SIZE = SPECIAL_TOKENS.length + 256;

const CHAT_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** GPT-2's printable stand-ins for the 256 bytes. */
function byteAlphabet(): string[] {
  const printable = new Set<number>();
  for (const [from, to] of [
    [33, 126],
    [161, 172],
    [174, 255],
  ])
    for (let b = from; b <= to; b++) printable.add(b);
  let extra = 0;
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(printable.has(b) ? b : 256 + extra++));
}

export function writeByteTokenizer(dir: string): void {
  const vocab: Record<string, number> = {};
  SPECIAL_TOKENS.forEach((t, i) => {
    vocab[t] = i;
  });
  byteAlphabet().forEach((ch, b) => {
    vocab[ch] = SPECIAL_TOKENS.length + b;
  });
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false };
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: null,
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  fs.writeFileSync(
    path.join(dir, 'tokenizer_config.json'),
    JSON.stringify(
      {
        eos_token: '<|im_end|>',
        pad_token: '<|endoftext|>',
        model_max_length: 512,
        tokenizer_class: 'PreTrainedTokenizerFast',
      },
      null,
      2,
    ),
  );
  fs.writeFileSync(path.join(dir, 'chat_template.jinja'), CHAT_TEMPLATE);
}
