/** Option value parsers. Each names the flag, echoes the value and says what is allowed. */
import { readFileSync } from 'node:fs';

import { jsonTextProblem } from '../core/strict-json.js';
import type { Json, JsonObject } from '../core/types.js';
import { UsageError } from './errors.js';

const show = (value: string) => JSON.stringify(value.length > 60 ? value.slice(0, 60) + '…' : value);

/** `--lease-s 60`: a whole number in [min, max]. */
export function intOption(flag: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new UsageError(`${flag} must be a whole number ${min}–${max}; got ${show(value)}`);
    }
    return n;
  };
}

/** Repeatable `--tag k=v` (or `k:v` with sep ':'), collected into a map. */
export function keyValueOption(flag: string, sep = '=') {
  return (value: string, previous: Record<string, string> | undefined): Record<string, string> => {
    const i = value.indexOf(sep);
    if (i <= 0) throw new UsageError(`${flag} must be key${sep}value; got ${show(value)}`);
    return { ...(previous ?? {}), [value.slice(0, i)]: value.slice(i + 1) };
  };
}

/** `--webhook-retry-schedule 5,300,1800`: a comma list of seconds (decimals allowed), each in (0, max]. */
export function secondsListOption(flag: string, max: number) {
  return (value: string): number[] => {
    const parts = value.split(',').map((s) => s.trim());
    const out = parts.map(Number);
    if (!parts.length || parts.some((p) => !/^\d+(\.\d+)?$/.test(p)) || out.some((n) => !(n > 0 && n <= max)))
      throw new UsageError(
        `${flag} must be a comma list of seconds, each more than 0 and at most ${max} (e.g. 5,300,1800); got ${show(value)}`,
      );
    return out;
  };
}

/** `--status a,b`: a comma list. */
export function listOption(value: string, previous: string[] | undefined): string[] {
  return [
    ...(previous ?? []),
    ...value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  ];
}

/** Reads `@file` (or `@-` for stdin) or returns the text itself. */
function textOrFile(flag: string, value: string): string {
  if (!value.startsWith('@')) return value;
  const path = value.slice(1);
  try {
    return readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (err) {
    throw new UsageError(`${flag}: cannot read ${path === '-' ? 'stdin' : path}: ${(err as Error).message}`);
  }
}

/** `--output '{"a":1}'` or `--output @result.json` (`@-` reads stdin): any JSON value. */
export function jsonOption(flag: string) {
  return (value: string): Json => {
    const text = textOrFile(flag, value);
    let parsed: Json;
    try {
      parsed = JSON.parse(text) as Json;
    } catch (err) {
      throw new UsageError(`${flag} must be JSON or @file; got ${show(text)} (${(err as Error).message})`);
    }
    const problem = jsonTextProblem(text, flag);
    if (problem) throw new UsageError(problem.message);
    return parsed;
  };
}

/** Like jsonOption, but the value must be a JSON object. */
export function jsonObjectOption(flag: string) {
  const parse = jsonOption(flag);
  return (value: string): JsonObject => {
    const v = parse(value);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new UsageError(`${flag} must be a JSON object; got ${show(value)}`);
    return v;
  };
}

/** Drops undefined values so that optional fields are omitted, not sent as undefined. */
export function compact<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
