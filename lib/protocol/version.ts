/**
 * API versions as oslo.messaging compares them (oslo-wire.md section 10): `X.Y` or
 * `X.Y.Z`; a server at A.B serves requests for A.b with b <= B.
 */

export interface Version {
  major: number;
  minor: number;
  revision: number;
}

const FORMAT = /^(\d+)\.(\d+)(?:\.(\d+))?$/;

export function isVersion(text: unknown): text is string {
  return typeof text === 'string' && FORMAT.test(text);
}

export function parseVersion(text: string): Version {
  const m = FORMAT.exec(text);
  if (!m) throw new TypeError(`invalid API version ${JSON.stringify(text)}: expected "X.Y"`);
  return { major: Number(m[1]), minor: Number(m[2]), revision: Number(m[3] ?? 0) };
}

/** Can a peer at `have` serve a request stamped `wanted`? (oslo's `is_compatible`) */
export function isCompatible(have: string, wanted: string): boolean {
  const h = parseVersion(have);
  const w = parseVersion(wanted);
  if (h.major !== w.major) return false;
  if (w.minor !== h.minor) return w.minor < h.minor;
  return w.revision <= h.revision;
}

/** `a` < `b` in version order. */
export function isLower(a: string, b: string): boolean {
  const x = parseVersion(a);
  const y = parseVersion(b);
  return x.major !== y.major ? x.major < y.major : x.minor !== y.minor ? x.minor < y.minor : x.revision < y.revision;
}
