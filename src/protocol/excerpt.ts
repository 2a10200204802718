/**
 * A file's or a stream's text as a message quotes it (an error, a problem in the editor): short, in double quotes,
 * its control characters escaped, so that no message shows more than a glimpse of a file nor drives a terminal.
 * The runner's messages use it; it is here so that the parsers of this folder can quote with it too.
 */

export const EXCERPT_CHARS = 80;

export function excerpt(text: string, chars = EXCERPT_CHARS): string {
  return escapeControls(JSON.stringify(text.length > chars ? `${text.slice(0, chars)}…` : text));
}

/** JSON.stringify escapes C0 controls only: DEL, C1 controls and the line and paragraph separators are escaped too. */
// eslint-disable-next-line no-control-regex -- control characters are what it finds
const CONTROLS = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/g;

/** Control characters as `\u` escapes, except newlines, which divide a message into lines. */
export function escapeControls(text: string): string {
  return text.replace(CONTROLS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
