import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ModelTokenizer, type ChatMessage } from '../../native-runner/src/checkpoint/tokenizer';
import { REFERENCE_DIR, tempDir } from '../fixtures/paths';

/**
 * continueFinalMessage as transformers' apply_chat_template(continue_final_message=True) renders it on the reference
 * templates: ChatML (llama, qwen2, qwen3) keeps the message verbatim, mistral's `[INST]` template trims it.
 */

const QUESTION = 'Which planet is known as the red planet? (A) Venus (B) Mars';
const prefilled = (prefill: string): ChatMessage[] => [
  { role: 'user', content: QUESTION },
  { role: 'assistant', content: prefill },
];
const load = (name: string) => ModelTokenizer.load(path.join(REFERENCE_DIR, name));

for (const name of ['llama', 'qwen2', 'qwen3']) {
  test(`${name}: a prefill is continued right after its content, before <|im_end|>`, () => {
    const tokenizer = load(name);
    const text = tokenizer.applyChatTemplate(prefilled('The answer is ('), { addGenerationPrompt: false, continueFinalMessage: true });
    assert.equal(text, `<|im_start|>user\n${QUESTION}<|im_end|>\n<|im_start|>assistant\nThe answer is (`);
    const ids = tokenizer.encodeChat(prefilled('The answer is ('), { addGenerationPrompt: false, continueFinalMessage: true });
    assert.deepEqual(ids, tokenizer.encode(text, { addSpecialTokens: false }));
  });

  test(`${name}: trailing whitespace the template keeps is kept`, () => {
    const text = load(name).applyChatTemplate(prefilled('I believe the best answer is ( '), {
      addGenerationPrompt: false,
      continueFinalMessage: true,
    });
    assert.ok(text.endsWith('<|im_start|>assistant\nI believe the best answer is ( '), JSON.stringify(text));
  });
}

test('mistral: the trimmed prefill is continued after " [/INST] ", without its eos', () => {
  const tokenizer = load('mistral');
  const text = tokenizer.applyChatTemplate(prefilled('The answer is ('), { addGenerationPrompt: false, continueFinalMessage: true });
  assert.equal(text, `<s>[INST] ${QUESTION} [/INST] The answer is (`);
});

test('mistral: trailing whitespace the template trims is cut after the stripped content', () => {
  const text = load('mistral').applyChatTemplate(prefilled('I believe the best answer is (  '), {
    addGenerationPrompt: false,
    continueFinalMessage: true,
  });
  assert.equal(text, `<s>[INST] ${QUESTION} [/INST] I believe the best answer is (`);
});

test('the last occurrence of the final content is the one continued', () => {
  const messages: ChatMessage[] = [
    { role: 'user', content: 'Say (' },
    { role: 'assistant', content: '(' },
  ];
  const text = load('qwen2').applyChatTemplate(messages, { addGenerationPrompt: false, continueFinalMessage: true });
  assert.equal(text, '<|im_start|>user\nSay (<|im_end|>\n<|im_start|>assistant\n(');
});

test('continueFinalMessage with addGenerationPrompt is refused', () => {
  assert.throws(
    () => load('qwen2').applyChatTemplate(prefilled('The answer is ('), { addGenerationPrompt: true, continueFinalMessage: true }),
    /continueFinalMessage and addGenerationPrompt exclude each other/,
  );
});

test('a template that drops the final message cannot be continued, and says which template', () => {
  const dir = tempDir('prefill');
  try {
    fs.copyFileSync(path.join(REFERENCE_DIR, 'qwen2', 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
    const userOnly = "{% for m in messages %}{% if m.role == 'user' %}<u>{{ m.content }}</u>{% endif %}{% endfor %}";
    fs.writeFileSync(path.join(dir, 'chat_template.jinja'), userOnly);
    assert.throws(
      () => ModelTokenizer.load(dir).applyChatTemplate(prefilled('The answer is ('), { addGenerationPrompt: false, continueFinalMessage: true }),
      {
        message: `${path.join(dir, 'chat_template.jinja')}: the chat template does not render the final assistant message's content verbatim, so it cannot be continued`,
      },
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
