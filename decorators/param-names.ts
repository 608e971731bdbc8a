/**
 * Reads argument names from a method's source text, once, at decoration time: nova's
 * wire format is a keyword dictionary, so the name of each parameter is part of the
 * contract. Only plain identifiers (with or without a default) can be read.
 */
import type { ParamMetadata } from './metadata';

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** The parameters of `fn`, or a reason they cannot be read. */
export function readParamNames(fn: Function): ParamMetadata[] | string {
  const source = stripComments(Function.prototype.toString.call(fn));
  const open = source.indexOf('(');
  if (open < 0) return 'no parameter list found';
  const close = matchingParen(source, open);
  if (close < 0) return 'unbalanced parameter list';
  const params: ParamMetadata[] = [];
  for (const raw of splitTopLevel(source.slice(open + 1, close))) {
    const text = raw.trim();
    if (!text) continue;
    const eq = topLevelIndexOf(text, '=');
    const name = (eq < 0 ? text : text.slice(0, eq)).trim();
    if (!IDENTIFIER.test(name)) return `parameter \`${text}\` is not a plain identifier (destructuring and rest parameters cannot be named)`;
    params.push({ name, optional: eq >= 0 });
  }
  return params;
}

function stripComments(src: string): string {
  let out = '';
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === '"' || c === "'" || c === '`') {
      const end = skipString(src, i);
      out += src.slice(i, end);
      i = end - 1;
    } else if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      i = end < 0 ? src.length : end + 1;
      out += ' ';
    } else if (c === '/' && src[i + 1] === '/') {
      const end = src.indexOf('\n', i);
      i = end < 0 ? src.length : end - 1;
    } else {
      out += c;
    }
  }
  return out;
}

function skipString(src: string, start: number): number {
  const quote = src[start];
  for (let i = start + 1; i < src.length; i++) {
    if (src[i] === '\\') i++;
    else if (src[i] === quote) return i + 1;
  }
  return src.length;
}

const OPEN = '([{';
const CLOSE = ')]}';

function matchingParen(src: string, open: number): number {
  let depth = 0;
  for (let i = open; i < src.length; i++) {
    const c = src[i];
    if (c === '"' || c === "'" || c === '`') i = skipString(src, i) - 1;
    else if (OPEN.includes(c)) depth++;
    else if (CLOSE.includes(c) && --depth === 0) return i;
  }
  return -1;
}

function splitTopLevel(list: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < list.length; i++) {
    const c = list[i];
    if (c === '"' || c === "'" || c === '`') i = skipString(list, i) - 1;
    else if (OPEN.includes(c)) depth++;
    else if (CLOSE.includes(c)) depth--;
    else if (c === ',' && depth === 0) {
      parts.push(list.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(list.slice(start));
  return parts;
}

function topLevelIndexOf(text: string, ch: string): number {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"' || c === "'" || c === '`') i = skipString(text, i) - 1;
    else if (OPEN.includes(c)) depth++;
    else if (CLOSE.includes(c)) depth--;
    else if (c === ch && depth === 0) return i;
  }
  return -1;
}
