import * as fs from 'node:fs';
import * as path from 'node:path';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import type { ChatMessage } from '../../../src/protocol/protocol';
import { CheckpointError } from './safetensors';

/** The protocol's message, re-exported as the type of what the tokenizer renders, for the runner's many importers. */
export type { ChatMessage };

export interface ChatTemplateOptions {
  /** open a new assistant message after the conversation */
  addGenerationPrompt: boolean;
  /** end the text inside the final message, after its content, so that the model continues it (e.g. a prefill) */
  continueFinalMessage?: boolean;
}

type JsonObject = Record<string, unknown>;

/** The special tokens transformers hands to a chat template by name. */
const TEMPLATE_SPECIAL_TOKENS = ['bos_token', 'eos_token', 'unk_token', 'pad_token'] as const;
type TemplateSpecialToken = (typeof TEMPLATE_SPECIAL_TOKENS)[number];
/** tokenizer_config.json fields that may hold an AddedToken object where @huggingface/tokenizers expects a string. */
const TOKEN_FIELDS = [...TEMPLATE_SPECIAL_TOKENS, 'sep_token', 'cls_token', 'mask_token'];

/** Where the chat template came from (for messages), or why there is none. */
type ChatTemplateLookup = { file: string; template: string } | { file: string; missing: string };

/**
 * A checkpoint's tokenizer as transformers loads it: tokenizer.json run by @huggingface/tokenizers, tokenizer_config.json
 * for the special tokens, and the chat template rendered by @huggingface/jinja.
 */
export class ModelTokenizer {
  private compiledTemplate: Template | undefined;

  private constructor(
    private readonly tokenizer: Tokenizer,
    private readonly specialTokens: Partial<Record<TemplateSpecialToken, string>>,
    private readonly chatTemplate: ChatTemplateLookup,
    /** transformers 5 leaves tokenization spaces alone unless the config asks; @huggingface/tokenizers defaults to cleaning. */
    private readonly cleanUpSpaces: boolean,
  ) {}

  static load(dir: string): ModelTokenizer {
    const tokenizerFile = path.join(dir, 'tokenizer.json');
    if (!fs.existsSync(tokenizerFile)) {
      throw new CheckpointError(tokenizerFile, 'not found; a checkpoint folder needs the tokenizer.json saved with its tokenizer');
    }
    const configFile = path.join(dir, 'tokenizer_config.json');
    // transformers loads a tokenizer without tokenizer_config.json too, with no special tokens named
    const config = fs.existsSync(configFile) ? readJsonObject(configFile) : {};
    const normalised = normaliseTokenFields(config);
    return new ModelTokenizer(
      createTokenizer(tokenizerFile, normalised),
      pickSpecialTokens(normalised),
      findChatTemplate(dir, config),
      config.clean_up_tokenization_spaces === true,
    );
  }

  /** Token ids of `text`; special tokens (e.g. `<s>`) are added as tokenizer.json's post-processor says unless turned off. */
  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  /** The token strings `encode` would give ids for, one per id. */
  tokens(text: string, options: { addSpecialTokens?: boolean } = {}): string[] {
    return this.tokenizer.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).tokens;
  }

  /** Keeps special tokens by default, as transformers' `decode` does. */
  decode(ids: number[], options: { skipSpecialTokens?: boolean } = {}): string {
    // @huggingface/tokenizers refuses an empty list, which transformers decodes to ''
    if (ids.length === 0) return '';
    return this.tokenizer.decode(ids, {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: this.cleanUpSpaces,
    });
  }

  /**
   * Renders with what transformers passes: the special tokens by name, `messages`, `add_generation_prompt`, and `tools`
   * and `documents` as None. @huggingface/jinja defines `raise_exception` itself (throwing an Error with the template's
   * message) and refuses to have it redefined.
   */
  applyChatTemplate(messages: ChatMessage[], options: ChatTemplateOptions): string {
    if (options.continueFinalMessage && options.addGenerationPrompt) {
      throw new Error(
        'continueFinalMessage and addGenerationPrompt exclude each other: the first continues the final message, the second opens a new one',
      );
    }
    const rendered = this.render({
      ...this.specialTokens,
      messages: messages.map(({ role, content }) => ({ role, content })),
      tools: null,
      documents: null,
      add_generation_prompt: options.addGenerationPrompt,
    });
    return options.continueFinalMessage ? this.cutAfterFinalMessage(rendered, messages) : rendered;
  }

  /** @huggingface/jinja's errors name neither the template's file nor, for a filter, what it expected instead. */
  private render(context: Record<string, unknown>): string {
    const template = this.template();
    try {
      return template.render(context);
    } catch (err) {
      const message = (err as Error).message;
      const filter = /^Unknown (\w+)Value filter: (.+)$/.exec(message);
      throw new CheckpointError(
        this.chatTemplate.file,
        filter
          ? `the chat template applies the filter "${filter[2]}" to a ${filter[1].toLowerCase()}, and @huggingface/jinja has no such filter; ` +
              "expected one of the filters of Jinja and of transformers' chat templates (such as trim, tojson, length)"
          : `rendering the chat template failed: ${message}`,
      );
    }
  }

  /** The template already writes every special token, so none are added again. */
  encodeChat(messages: ChatMessage[], options: ChatTemplateOptions): number[] {
    return this.encode(this.applyChatTemplate(messages, options), { addSpecialTokens: false });
  }

  tokenId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  get bosTokenId(): number | null {
    return this.specialTokenId('bos_token');
  }

  get eosTokenId(): number | null {
    return this.specialTokenId('eos_token');
  }

  get padTokenId(): number | null {
    return this.specialTokenId('pad_token');
  }

  private specialTokenId(name: TemplateSpecialToken): number | null {
    const token = this.specialTokens[name];
    return token === undefined ? null : (this.tokenId(token) ?? null);
  }

  private template(): Template {
    const lookup = this.chatTemplate;
    if ('missing' in lookup) throw new CheckpointError(lookup.file, lookup.missing);
    try {
      this.compiledTemplate ??= new Template(lookup.template);
    } catch (err) {
      throw new CheckpointError(lookup.file, `chat template cannot be parsed (${(err as Error).message})`);
    }
    return this.compiledTemplate;
  }

  /**
   * transformers' continue_final_message: the rendering is cut right after the final message's content, found as
   * its last occurrence. Templates that trim the content (mistral's `| trim`) lose its trailing whitespace, so the
   * cut falls after the stripped content when the rendering does not keep the content verbatim.
   */
  private cutAfterFinalMessage(rendered: string, messages: ChatMessage[]): string {
    const final = messages.at(-1);
    if (!final) throw new Error('continueFinalMessage needs a final message to continue');
    const stripped = final.content.trim();
    const at = rendered.lastIndexOf(stripped);
    if (at < 0) {
      throw new Error(
        `${this.chatTemplate.file}: the chat template does not render the final ${final.role} message's content verbatim, so it cannot be continued`,
      );
    }
    const kept = final.content.trimStart().length;
    const end = rendered.slice(at, at + kept) === final.content ? at + kept : at + stripped.length;
    return rendered.slice(0, end);
  }
}

/** The tokenizer models @huggingface/tokenizers implements: given another type, it would guess one, silently. */
const TOKENIZER_MODELS = ['BPE', 'Unigram', 'WordPiece'];

function createTokenizer(file: string, config: JsonObject): Tokenizer {
  const tokenizerJson = readJsonObject(file);
  checkModelType(tokenizerJson, file);
  try {
    return new Tokenizer(tokenizerJson, config);
  } catch (err) {
    throw new CheckpointError(file, `cannot be loaded by @huggingface/tokenizers (${(err as Error).message})`);
  }
}

/** A model saved without its type is recognised from its fields, by @huggingface/tokenizers as by transformers. */
function checkModelType(tokenizerJson: JsonObject, file: string): void {
  const type = isObject(tokenizerJson.model) ? tokenizerJson.model.type : undefined;
  if (type === undefined || TOKENIZER_MODELS.includes(type as string)) return;
  throw new CheckpointError(
    file,
    `model.type is ${JSON.stringify(type)}, expected one of ${TOKENIZER_MODELS.join(', ')} (the tokenizer models the runner can run)`,
  );
}

function readJsonObject(file: string): JsonObject {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CheckpointError(file, `is not valid JSON (${(err as Error).message})`);
  }
  if (!isObject(json)) throw new CheckpointError(file, 'must hold a JSON object');
  return json;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** tokenizer_config.json may save a token as an AddedToken object (`{"content": "<s>", ...}`) instead of its string. */
function tokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (isObject(value) && typeof value.content === 'string') return value.content;
  return undefined;
}

function normaliseTokenFields(config: JsonObject): JsonObject {
  const normalised: JsonObject = { ...config };
  for (const field of TOKEN_FIELDS) {
    if (field in config) normalised[field] = tokenContent(config[field]);
  }
  if (Array.isArray(config.additional_special_tokens)) {
    normalised.additional_special_tokens = config.additional_special_tokens.map(tokenContent).filter((t) => t !== undefined);
  }
  return normalised;
}

function pickSpecialTokens(config: JsonObject): Partial<Record<TemplateSpecialToken, string>> {
  const tokens: Partial<Record<TemplateSpecialToken, string>> = {};
  for (const name of TEMPLATE_SPECIAL_TOKENS) {
    const token = config[name];
    if (typeof token === 'string') tokens[name] = token;
  }
  return tokens;
}

/** chat_template.jinja wins over tokenizer_config.json, as in transformers; a missing template only matters once a chat is rendered. */
function findChatTemplate(dir: string, config: JsonObject): ChatTemplateLookup {
  const jinjaFile = path.join(dir, 'chat_template.jinja');
  if (fs.existsSync(jinjaFile)) return { file: jinjaFile, template: fs.readFileSync(jinjaFile, 'utf8') };
  const configFile = path.join(dir, 'tokenizer_config.json');
  const value = config.chat_template;
  if (typeof value === 'string') return { file: configFile, template: value };
  if (Array.isArray(value)) return namedDefaultTemplate(value, configFile);
  return { file: dir, missing: `has no chat template: there is no ${jinjaFile}, and ${configFile} has no chat_template` };
}

/** A list of `{name, template}` is a set of named templates, of which transformers renders the one named "default". */
function namedDefaultTemplate(entries: unknown[], configFile: string): ChatTemplateLookup {
  const names = entries.map((entry) => (isObject(entry) ? entry.name : undefined));
  const entry = entries[names.indexOf('default')];
  if (isObject(entry) && typeof entry.template === 'string') return { file: configFile, template: entry.template };
  return {
    file: configFile,
    missing: `chat_template lists templates named ${JSON.stringify(names)} but none named "default" with a template string`,
  };
}
