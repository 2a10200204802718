import { prefillOf } from '../../../src/protocol/evaluationItem';
import type { ChatMessage, ModelTokenizer } from '../checkpoint/tokenizer';

/** A conversation as the model is given it: through its chat template, continuing a final assistant message. */
export interface ChatPrompt {
  text: string;
  ids: number[];
  /** the final assistant message the model continues, if any */
  prefill: string | null;
}

export function renderChat(tokenizer: ModelTokenizer, messages: ChatMessage[]): ChatPrompt {
  const prefill = prefillOf(messages);
  const text =
    prefill === null
      ? tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true })
      : tokenizer.applyChatTemplate(messages, { addGenerationPrompt: false, continueFinalMessage: true });
  return { text, ids: tokenizer.encode(text, { addSpecialTokens: false }), prefill };
}

/** The conversation with the model's reply in place of the prefill it continued, or appended. */
export function withReply(messages: ChatMessage[], reply: string): ChatMessage[] {
  const open = prefillOf(messages) === null ? messages : messages.slice(0, -1);
  return [...open, { role: 'assistant', content: reply }];
}
