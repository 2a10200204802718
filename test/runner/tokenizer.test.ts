import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CheckpointError } from '../../native-runner/src/checkpoint/safetensors';
import { ModelTokenizer, type ChatMessage } from '../../native-runner/src/checkpoint/tokenizer';

import { REFERENCE_DIR as REFERENCE } from '../fixtures/paths';

interface EncodingCase {
  text: string;
  ids: number[];
  tokens: string[];
  decoded: string;
}
interface ChatCase {
  messages: ChatMessage[];
  add_generation_prompt: boolean;
  text: string;
  ids: number[];
}
interface TokenizerCases {
  encodings: EncodingCase[];
  chats: ChatCase[];
}

const referenceNames = fs.readdirSync(REFERENCE).filter((name) => fs.existsSync(path.join(REFERENCE, name, 'tokenizer_cases.json')));

function readCases(name: string): TokenizerCases {
  return JSON.parse(fs.readFileSync(path.join(REFERENCE, name, 'tokenizer_cases.json'), 'utf8'));
}

function readTokenizerConfig(name: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(REFERENCE, name, 'tokenizer_config.json'), 'utf8'));
}

/** A checkpoint folder holding the reference tokenizer.json of `name` and the given tokenizer_config.json. */
function folderWith(name: string, tokenizerConfig: Record<string, unknown>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pinpoint-tokenizer-'));
  fs.copyFileSync(path.join(REFERENCE, name, 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig));
  return dir;
}

const QUESTION: ChatMessage[] = [{ role: 'user', content: 'Hi' }];

test('reference folders with tokenizer cases exist', () => {
  assert.ok(referenceNames.length > 0);
});

for (const name of referenceNames) {
  const cases = readCases(name);

  test(`${name}: encodings match the tokenizers library, special tokens added`, () => {
    const tokenizer = ModelTokenizer.load(path.join(REFERENCE, name));
    for (const c of cases.encodings) {
      assert.deepEqual(tokenizer.encode(c.text), c.ids, JSON.stringify(c.text));
      assert.deepEqual(tokenizer.tokens(c.text), c.tokens, JSON.stringify(c.text));
    }
  });

  // `decoded` keeps the special tokens (mistral's reads "<s> Hello world"), so it is decode with skipSpecialTokens false.
  test(`${name}: decode reproduces the reference decoded text`, () => {
    const tokenizer = ModelTokenizer.load(path.join(REFERENCE, name));
    for (const c of cases.encodings) {
      assert.equal(tokenizer.decode(c.ids), c.decoded, JSON.stringify(c.text));
      assert.equal(tokenizer.decode(c.ids, { skipSpecialTokens: false }), c.decoded, JSON.stringify(c.text));
    }
  });

  test(`${name}: chat template renders and encodes exactly as apply_chat_template`, () => {
    const tokenizer = ModelTokenizer.load(path.join(REFERENCE, name));
    for (const [i, c] of cases.chats.entries()) {
      const options = { addGenerationPrompt: c.add_generation_prompt };
      assert.equal(tokenizer.applyChatTemplate(c.messages, options), c.text, `chats[${i}]`);
      assert.deepEqual(tokenizer.encodeChat(c.messages, options), c.ids, `chats[${i}]`);
    }
  });

  test(`${name}: special token ids resolve from tokenizer_config.json`, () => {
    const tokenizer = ModelTokenizer.load(path.join(REFERENCE, name));
    const config = readTokenizerConfig(name);
    const expected = (token: unknown) => (typeof token === 'string' ? tokenizer.tokenId(token) : null);
    assert.equal(tokenizer.eosTokenId, expected(config.eos_token));
    assert.equal(tokenizer.bosTokenId, expected(config.bos_token));
    assert.equal(tokenizer.padTokenId, expected(config.pad_token));
    assert.equal(typeof tokenizer.eosTokenId, 'number');
  });
}

test('special token ids of the reference mistral and llama tokenizers', () => {
  const mistral = ModelTokenizer.load(path.join(REFERENCE, 'mistral'));
  assert.deepEqual([mistral.bosTokenId, mistral.eosTokenId, mistral.padTokenId], [1, 2, null]);
  const llama = ModelTokenizer.load(path.join(REFERENCE, 'llama'));
  assert.deepEqual([llama.bosTokenId, llama.eosTokenId, llama.padTokenId], [null, 2, 0]);
  assert.equal(llama.tokenId('<|im_start|>'), 1);
  assert.equal(llama.tokenId('no such token'), undefined);
});

test('encode without special tokens leaves out what the post-processor adds', () => {
  const mistral = ModelTokenizer.load(path.join(REFERENCE, 'mistral'));
  const withSpecial = mistral.encode('Hello world');
  assert.equal(withSpecial[0], 1);
  assert.deepEqual(mistral.encode('Hello world', { addSpecialTokens: false }), withSpecial.slice(1));
});

test('decode can skip special tokens, and decodes no ids to an empty string', () => {
  const llama = ModelTokenizer.load(path.join(REFERENCE, 'llama'));
  const ids = llama.encodeChat(QUESTION, { addGenerationPrompt: true });
  assert.equal(llama.decode(ids, { skipSpecialTokens: true }), 'user\nHi\nassistant\n');
  assert.equal(llama.decode([]), '');
});

test('special tokens saved as AddedToken objects reach the template and the ids', () => {
  const mistral = readTokenizerConfig('mistral');
  const dir = folderWith('mistral', {
    ...mistral,
    bos_token: { __type: 'AddedToken', content: '<s>', lstrip: false, normalized: false, rstrip: false, single_word: false },
    eos_token: { __type: 'AddedToken', content: '</s>', lstrip: false, normalized: false, rstrip: false, single_word: false },
  });
  try {
    const tokenizer = ModelTokenizer.load(dir);
    assert.equal(tokenizer.bosTokenId, 1);
    assert.equal(tokenizer.eosTokenId, 2);
    assert.equal(tokenizer.applyChatTemplate(QUESTION, { addGenerationPrompt: true }), '<s>[INST] Hi [/INST]');
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('a list of named chat templates renders the one named "default"', () => {
  const dir = folderWith('qwen2', {
    ...readTokenizerConfig('qwen2'),
    chat_template: [
      { name: 'tool_use', template: 'tools' },
      { name: 'default', template: '{% for m in messages %}[{{ m.role }}] {{ m.content }}{% endfor %}{{ eos_token }}' },
    ],
  });
  try {
    assert.equal(ModelTokenizer.load(dir).applyChatTemplate(QUESTION, { addGenerationPrompt: false }), '[user] Hi<|im_end|>');
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('raise_exception in a template throws with its message', () => {
  const dir = folderWith('qwen2', {
    ...readTokenizerConfig('qwen2'),
    chat_template: "{% if messages[0]['role'] != 'system' %}{{ raise_exception('needs a system message') }}{% endif %}",
  });
  try {
    assert.throws(() => ModelTokenizer.load(dir).applyChatTemplate(QUESTION, { addGenerationPrompt: true }), /needs a system message/);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('no chat template: tokenizing works, rendering a chat names both places looked', () => {
  const config = readTokenizerConfig('qwen2');
  delete config.chat_template;
  const dir = folderWith('qwen2', config);
  try {
    const tokenizer = ModelTokenizer.load(dir);
    assert.ok(tokenizer.encode('Hello').length > 0);
    assert.throws(
      () => tokenizer.applyChatTemplate(QUESTION, { addGenerationPrompt: true }),
      (err: unknown) => {
        assert.ok(err instanceof CheckpointError);
        assert.equal(
          err.message,
          `${dir}: has no chat template: there is no ${path.join(dir, 'chat_template.jinja')}, ` +
            `and ${path.join(dir, 'tokenizer_config.json')} has no chat_template`,
        );
        return true;
      },
    );
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('a folder without tokenizer.json is refused naming the file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pinpoint-tokenizer-'));
  try {
    const file = path.join(dir, 'tokenizer.json');
    assert.throws(
      () => ModelTokenizer.load(dir),
      (err: unknown) => {
        assert.ok(err instanceof CheckpointError);
        assert.equal(err.file, file);
        assert.ok(err.message.startsWith(`${file}: not found`));
        return true;
      },
    );
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});
