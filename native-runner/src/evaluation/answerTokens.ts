import type { ModelTokenizer } from '../checkpoint/tokenizer';

/**
 * The token a model writes for each short answer ("A", "y") right after a context, so that answers can be read
 * from next-token logits: the token that encoding context + answer adds to the context's encoding. When the
 * tokenizer merges the answer into the text before it (SentencePiece has "(A" as one piece), that token is not
 * a choice the model faces after the context, and the answer's own vocabulary entry is read instead.
 */
export function answerTokenIds(tokenizer: ModelTokenizer, context: string, answers: readonly string[]): number[] {
  const base = tokenizer.encode(context, { addSpecialTokens: false });
  const ids = answers.map((answer) => answerToken(tokenizer, context, base, answer));
  const repeated = ids.findIndex((id, i) => ids.indexOf(id) !== i);
  if (repeated >= 0)
    throw new Error(
      `answers ${JSON.stringify(answers[ids.indexOf(ids[repeated])])} and ${JSON.stringify(answers[repeated])} are the same token ${ids[repeated]}`,
    );
  return ids;
}

function answerToken(tokenizer: ModelTokenizer, context: string, base: number[], answer: string): number {
  const extended = tokenizer.encode(context + answer, { addSpecialTokens: false });
  const extendsBase = extended.length === base.length + 1 && base.every((id, i) => extended[i] === id);
  if (extendsBase) return extended[base.length];
  const own = tokenizer.tokenId(answer);
  if (own === undefined) {
    throw new Error(
      `the answer ${JSON.stringify(answer)} cannot be read from one token: the tokenizer joins it to the text before it and has no token for it alone`,
    );
  }
  return own;
}

/**
 * The token a reply starting with `word` begins with after the prompt: the first token that encoding prompt + word
 * adds to the prompt's encoding (each word's first sub-token), or the word's own first token when the tokenizer
 * merges it into the prompt's last token.
 */
export function firstReplyToken(tokenizer: ModelTokenizer, prompt: string, word: string): number {
  const base = tokenizer.encode(prompt, { addSpecialTokens: false });
  const extended = tokenizer.encode(prompt + word, { addSpecialTokens: false });
  const extendsBase = extended.length > base.length && base.every((id, i) => extended[i] === id);
  const id = extendsBase ? extended[base.length] : tokenizer.encode(word, { addSpecialTokens: false })[0];
  if (id === undefined) throw new Error(`the target ${JSON.stringify(word)} encodes to no token`);
  return id;
}
