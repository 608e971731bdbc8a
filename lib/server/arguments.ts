/**
 * Turns a request's keyword `args` into the positional arguments of a method, checked
 * against the types `emitDecoratorMetadata` recorded: class-typed parameters become
 * validated instances (class-transformer + class-validator), primitives are checked and
 * never coerced, `Date` accepts ISO strings. Any refusal is one `ValidationError` that
 * lists every problem; the method never runs.
 */
import { plainToInstance } from 'class-transformer';
import { validate, type ValidationError as ClassValidatorError } from 'class-validator';
import type { MethodMetadata } from '../../decorators/metadata';
import { ValidationError, type ValidationDetail } from '../errors';

export type ArgumentBinder = (args: Record<string, unknown>) => unknown[] | Promise<unknown[]>;

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const ISO_DATE = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

type Check = (value: unknown, path: string, details: ValidationDetail[]) => unknown;

export function argumentBinder(meta: MethodMetadata, paramTypes: readonly unknown[]): ArgumentBinder {
  const params = meta.params;
  const checks: Check[] = params.map((_, i) => checkFor(paramTypes[i]));
  const needsAsync = params.some((_, i) => isDtoClass(paramTypes[i]));
  const known = new Set(params.map((p) => p.name));

  const bindSync = (args: Record<string, unknown>, details: ValidationDetail[]): unknown[] => {
    for (const key of Object.keys(args)) {
      if (!known.has(key)) {
        details.push({ property: key, constraints: { unknownArgument: `${meta.name}() has no argument named ${JSON.stringify(key)}` } });
      }
    }
    const values: unknown[] = new Array(params.length);
    for (let i = 0; i < params.length; i++) {
      const p = params[i];
      const value = Object.prototype.hasOwnProperty.call(args, p.name) ? args[p.name] : undefined;
      if (value === undefined) {
        if (!p.optional) details.push({ property: p.name, constraints: { isDefined: `${p.name} is required` } });
        continue; // let the declared default apply
      }
      values[i] = checks[i](value, p.name, details);
    }
    return values;
  };

  if (!needsAsync) {
    return (args) => {
      const details: ValidationDetail[] = [];
      const values = bindSync(args, details);
      if (details.length) throw invalid(meta.name, details);
      return values;
    };
  }
  return async (args) => {
    const details: ValidationDetail[] = [];
    const values = bindSync(args, details);
    await Promise.all(
      params.map(async (p, i) => {
        const cls = paramTypes[i];
        if (!isDtoClass(cls) || !(values[i] instanceof cls)) return;
        const errors = await validate(values[i] as object, { forbidUnknownValues: false });
        flatten(errors, p.name, details);
      }),
    );
    if (details.length) throw invalid(meta.name, details);
    return values;
  };
}

function invalid(method: string, details: ValidationDetail[]): ValidationError {
  const summary = details.map((d) => `${d.property}: ${Object.values(d.constraints).join('; ')}`).join(', ');
  return new ValidationError(`invalid arguments for ${method}(): ${summary}`, details);
}

function checkFor(type: unknown): Check {
  if (type === Number) return primitive('number', 'isNumber', (v) => typeof v === 'number' && Number.isFinite(v));
  if (type === String) return primitive('string', 'isString', (v) => typeof v === 'string');
  if (type === Boolean) return primitive('boolean', 'isBoolean', (v) => typeof v === 'boolean');
  if (type === Date) return checkDate;
  if (type === Array) return primitive('array', 'isArray', Array.isArray);
  if (isDtoClass(type)) return dtoCheck(type);
  return passThrough; // Object, unions, interfaces: the metadata says nothing more
}

function primitive(kind: string, constraint: string, ok: (v: unknown) => boolean): Check {
  return (value, path, details) => {
    if (!ok(value)) details.push({ property: path, constraints: { [constraint]: `${path} must be a ${kind}, got ${describe(value)}` } });
    return value;
  };
}

const checkDate: Check = (value, path, details) => {
  if (typeof value === 'string' && ISO_DATE.test(value) && isCalendarDate(value)) {
    const d = new Date(value);
    if (!Number.isNaN(d.getTime())) return d;
  }
  details.push({ property: path, constraints: { isDate: `${path} must be an ISO 8601 date string, got ${describe(value)}` } });
  return value;
};

/** `new Date('2023-02-30')` silently rolls over to March 1st; an impossible day is refused instead. */
function isCalendarDate(iso: string): boolean {
  const [y, m, d] = iso.slice(0, 10).split('-').map(Number);
  return m >= 1 && m <= 12 && d >= 1 && d <= new Date(Date.UTC(y, m, 0)).getUTCDate();
}

const passThrough: Check = (value) => value;

function dtoCheck(cls: new () => object): Check {
  return (value, path, details) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      details.push({ property: path, constraints: { isObject: `${path} must be an object (${cls.name}), got ${describe(value)}` } });
      return value;
    }
    const bad = forbiddenKeyPath(value, path);
    if (bad) {
      details.push({ property: bad, constraints: { forbiddenKey: `${bad} is a reserved name and cannot be sent` } });
      return value;
    }
    return plainToInstance(cls, value);
  };
}

const BUILT_INS = new Set<unknown>([Object, Number, String, Boolean, Date, Array, Function, Promise, Map, Set, Symbol, BigInt]);

function isDtoClass(type: unknown): type is new () => object {
  return typeof type === 'function' && !BUILT_INS.has(type);
}

function forbiddenKeyPath(root: object, path: string): string | undefined {
  const stack: Array<[unknown, string]> = [[root, path]];
  while (stack.length) {
    const [v, p] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    for (const k of Object.keys(v)) {
      if (FORBIDDEN_KEYS.has(k)) return `${p}.${k}`;
      stack.push([(v as Record<string, unknown>)[k], `${p}.${k}`]);
    }
  }
  return undefined;
}

function flatten(errors: ClassValidatorError[], prefix: string, out: ValidationDetail[]): void {
  for (const e of errors) {
    const path = `${prefix}.${e.property}`;
    if (e.constraints) out.push({ property: path, constraints: { ...e.constraints } });
    if (e.children?.length) flatten(e.children, path, out);
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}
