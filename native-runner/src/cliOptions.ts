import { DEVICES, DTYPES, type Device, type Dtype } from '../../src/protocol/protocol';

/** Checked values of command-line options, shared by every `pinpoint` command. */

export class UsageError extends Error {}

export function required(value: string | undefined, flag: string): string {
  if (value === undefined) throw new UsageError(`${flag} is required`);
  return value;
}

export function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], flag: string): T {
  if (!allowed.includes(value as T)) throw new UsageError(`${flag} must be one of ${allowed.join(', ')} (got "${value}")`);
  return value as T;
}

function number(value: string, flag: string, ok: (n: number) => boolean, what: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || !ok(n)) throw new UsageError(`${flag} must be ${what} (got "${value}")`);
  return n;
}

export const count = (value: string, flag: string) => number(value, flag, (n) => Number.isInteger(n) && n > 0, 'a positive integer');
export const positive = (value: string, flag: string) => number(value, flag, (n) => n > 0, 'a positive number');
export const fraction = (value: string, flag: string) => number(value, flag, (n) => n >= 0 && n <= 1, 'a number from 0 to 1');
export const nonNegative = (value: string, flag: string) => number(value, flag, (n) => n >= 0, 'a non-negative number');

/** An option's values as a usage line lists them, from the list its parser checks against. */
export const choices = (allowed: readonly string[]) => allowed.join('|');
export const DEVICE_USAGE = `[--device ${choices(DEVICES)}]`;
export const DTYPE_USAGE = `[--dtype ${choices(DTYPES)}]`;

export const device = (value: string | undefined): Device => oneOf(value, DEVICES, '--device');
export const dtype = (value: string | undefined): Dtype => oneOf(value, DTYPES, '--dtype');
