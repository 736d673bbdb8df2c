/**
 * JSON text that JSON.parse would accept but silently change is refused, because what the
 * ledger accepts must read back exactly. JSON.parse keeps only the last of two equal keys
 * in an object and rounds an integer a double cannot hold to the nearest one
 * (9007199254740993 becomes …992; every integer up to 2^53 − 1 is exact). `__proto__` keys (and `constructor.prototype`) are
 * refused too, saying why, since they can change object prototypes downstream. Used for
 * HTTP bodies, the CLI's JSON options and imported JSON lines and cells.
 */
import type { ErrorDetail } from './errors.js';

interface Frame {
  kind: 'object' | 'array';
  keys: Set<string>;
  /** The key (object) or index (array) of the value being read. */
  at: string | number;
  expectKey: boolean;
}

/**
 * The first thing in valid JSON text (JSON.parse accepted it) that JSON.parse would
 * silently change, as a field path under `root` and a message; null if there is none.
 * Iterative: no input can overflow the stack.
 */
export function jsonTextProblem(text: string, root = 'body'): ErrorDetail | null {
  const stack: Frame[] = [];
  const where = (last?: string) => {
    const parts = stack.map((f) => String(f.at));
    if (last !== undefined) parts[parts.length - 1] = last;
    const path = parts.join('.');
    return root === 'body' ? path || root : path ? `${root}.${path}` : root;
  };
  for (let i = 0; i < text.length;) {
    const c = text[i];
    const top = stack.at(-1);
    if (c === '{' || c === '[') {
      stack.push({ kind: c === '{' ? 'object' : 'array', keys: new Set(), at: c === '{' ? '' : 0, expectKey: c === '{' });
      i++;
    } else if (c === '}' || c === ']') {
      stack.pop();
      i++;
    } else if (c === ',') {
      if (top?.kind === 'array') top.at = (top.at as number) + 1;
      else if (top) top.expectKey = true;
      i++;
    } else if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (top?.kind === 'object' && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        // The path is built only to report: building it for every key would be quadratic in the depth.
        if (top.keys.has(key)) {
          const field = where(key);
          return { field, message: `${field}: the key ${JSON.stringify(key)} appears twice in one object; send each key once` };
        }
        const parent = stack.at(-2);
        if (key === '__proto__' || (key === 'prototype' && parent?.kind === 'object' && parent.at === 'constructor')) {
          const field = where(key);
          return { field, message: `${field}: the key ${JSON.stringify(key)} is not allowed (it could change object prototypes)` };
        }
        top.keys.add(key);
        top.at = key;
        top.expectKey = false;
      }
      i = j + 1;
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      let j = i + 1;
      while (j < text.length && /[0-9.eE+-]/.test(text[j])) j++;
      const literal = text.slice(i, j);
      // An integer a double cannot hold exactly (1e20 written out is fine: it is one).
      if (/^-?\d{16,}$/.test(literal) && BigInt(literal) !== BigInt(Number(literal))) {
        const field = where();
        return {
          field,
          message: `${field}: the integer ${literal} cannot be stored exactly (JSON numbers are doubles: it would become ${BigInt(Number(literal))}); send it as a string`,
        };
      }
      i = j;
    } else i++;
  }
  return null;
}
