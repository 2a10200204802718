import { Transform, type TransformCallback } from 'node:stream';
import { TextDecoder } from 'node:util';
import type { ContentTypeDecoder, Message } from 'vscode-jsonrpc/node';
import { excerpt } from '../../src/protocol/excerpt';

/**
 * Checks the framing of the JSON-RPC byte stream (`Content-Length: N\r\n\r\n` and N bytes of body) on its way to
 * vscode-jsonrpc's reader, passing the bytes through unchanged. The reader trusts the framing: given a length
 * longer than what comes it waits for ever, even once its input has ended, and it bounds neither the length nor
 * the header, and it drops a body that is JSON but no message without a word. Here each malformed frame fails the
 * stream instead, with an error naming what was wrong.
 */

/** Far above any request the extension sends (paths and settings), and still a bound on what is buffered. */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** A header is a Content-Length and perhaps a Content-Type: anything longer is not a header. */
const MAX_HEADER_BYTES = 4096;

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]";
/** A header line: a field name (RFC 9110 token characters), `:` and a value. */
const HEADER_LINE = new RegExp(`^${TOKEN}+:[^\\r\\n]*\\r$`);
/** A header line as far as it has come. */
const HEADER_LINE_SO_FAR = new RegExp(`^(${TOKEN}*|${TOKEN}+:[^\\r\\n]*\\r?)$`);

export class FrameError extends Error {}

export class FrameCheck extends Transform {
  /** the header read so far, as latin1 (one character per byte) */
  private header = '';
  /** the body bytes still to come, and the length its header gave */
  private bodyLeft = 0;
  private bodyLength = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.check(chunk);
    } catch (err) {
      callback(err as FrameError);
      return;
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.bodyLeft > 0) {
      callback(new FrameError(`the input ended inside a message: ${this.bodyLeft} of its ${this.bodyLength} bytes never came`));
    } else if (this.header !== '') {
      callback(new FrameError(`the input ended inside a message header (${excerpt(this.header)})`));
    } else {
      callback();
    }
  }

  private check(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.bodyLeft > 0) {
        const taken = Math.min(this.bodyLeft, chunk.length - offset);
        this.bodyLeft -= taken;
        offset += taken;
      } else {
        offset = this.readHeader(chunk, offset);
      }
    }
  }

  /** Takes header bytes up to the end of a line or of the chunk; returns where it stopped. */
  private readHeader(chunk: Buffer, offset: number): number {
    const newline = chunk.indexOf(0x0a, offset);
    const end = newline === -1 ? chunk.length : newline + 1;
    this.header += chunk.toString('latin1', offset, end);
    if (this.header.length > MAX_HEADER_BYTES)
      throw new FrameError(`a message header longer than ${MAX_HEADER_BYTES} bytes: ${excerpt(this.header)}`);
    const lines = this.header.split('\n');
    const current = lines.pop()!;
    lines.forEach(checkLine);
    if (!HEADER_LINE_SO_FAR.test(current)) throw new FrameError(`not a message header: ${excerpt(current)} is no "Name: value" line`);
    // an empty line ends the header
    if (lines.at(-1) === '\r') this.startBody(lines.slice(0, -1));
    return end;
  }

  private startBody(lines: string[]): void {
    const fields = new Map(
      lines.map((line) => {
        const colon = line.indexOf(':');
        return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
      }),
    );
    this.header = '';
    const value = fields.get('content-length');
    if (value === undefined) throw new FrameError(`a message header without Content-Length (its fields: ${[...fields.keys()].join(', ')})`);
    if (!/^\d+$/.test(value)) throw new FrameError(`Content-Length must be a number of bytes (got ${excerpt(value)})`);
    const length = Number(value);
    if (length > MAX_MESSAGE_BYTES) throw new FrameError(`Content-Length ${value} is over the ${MAX_MESSAGE_BYTES} bytes a message may have`);
    this.bodyLeft = length;
    this.bodyLength = length;
  }
}

/** A complete line of a header: `Name: value`, or the empty line that ends it. */
function checkLine(line: string, index: number): void {
  if (!line.endsWith('\r')) throw new FrameError(`a header line must end with \\r\\n (got ${excerpt(line)})`);
  if (line === '\r' && index === 0) throw new FrameError('an empty line where a message header should begin');
  if (line !== '\r' && !HEADER_LINE.test(line)) throw new FrameError(`not a message header: ${excerpt(line)} is no "Name: value" line`);
}

/**
 * The reader's decoder of bodies: JSON, and a JSON-RPC 2.0 request, notification or response (vscode-jsonrpc reads
 * no batches).
 */
export const MESSAGE_DECODER: ContentTypeDecoder = {
  name: 'application/json',
  decode: async (body, { charset }) => {
    const text = new TextDecoder(charset).decode(body);
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch (err) {
      throw new FrameError(`its body is not JSON (${(err as Error).message})`, { cause: err });
    }
    if (!isMessage(message)) throw new FrameError(`its body is no JSON-RPC 2.0 message: ${excerpt(text)}`);
    return message;
  },
};

function isMessage(value: unknown): value is Message {
  const message = value as { jsonrpc?: unknown; method?: unknown; id?: unknown } | null;
  if (typeof message !== 'object' || message === null || Array.isArray(message) || message.jsonrpc !== '2.0') return false;
  return typeof message.method === 'string' || 'result' in message || 'error' in message;
}
