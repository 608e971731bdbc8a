/**
 * Turns raw per-case figures into the comparison: Courier as a ratio to the baseline,
 * memory:// as absolute figures and cost per operation, the targets with pass/fail,
 * and the terminal table.
 */
import type { CaseResult, Impl, Workload } from './common';
import { CAST_WINDOW, SOAK_INFLIGHT } from './workloads';

export interface ResultRecord extends CaseResult {
  impl: Impl;
}

export interface Row {
  workload: Workload;
  case: string;
  metric: string;
  unit: string;
  better: 'higher' | 'lower';
  baseline?: number;
  courier?: number;
  /** courier / baseline. */
  ratio?: number;
  memory?: number;
  /** memory:// cost of one operation in microseconds (1e6 / rate, or the latency itself). */
  memoryUsPerOp?: number;
  /**
   * CPU microseconds per operation, client + server processes together (first row of a
   * case only): what each implementation costs on top of the broker.
   */
  cpu?: { baseline?: number; courier?: number; ratio?: number; memory?: number };
  /** Pre-formatted cells, for rows that are not numbers (soak). */
  text?: { baseline?: string; courier?: string; memory?: string };
  target?: TargetResult;
}

export interface TargetResult {
  name: string;
  /** e.g. ">= 0.85x baseline" */
  rule: string;
  value?: number;
  pass?: boolean;
  /** Why there is no verdict, or a caveat on it. */
  note?: string;
}

interface MetricSpec {
  key: string;
  name: string;
  unit: string;
  better: 'higher' | 'lower';
}

const lat = (key: string, name: string): MetricSpec => ({ key, name, unit: 'µs', better: 'lower' });
const rate = (key: string, name: string, unit: string): MetricSpec => ({ key, name, unit, better: 'higher' });

const PRIMARY: Record<Exclude<Workload, 'soak'>, MetricSpec[]> = {
  seq: [lat('p50_us', 'p50 latency'), lat('p99_us', 'p99 latency')],
  concurrent: [rate('calls_per_s', 'throughput', 'calls/s')],
  cast: [rate('msgs_per_s', 'first send..all handled', 'msgs/s')],
  multicall: [rate('items_per_s', 'streamed', 'items/s')],
  payload: [rate('calls_per_s', 'throughput @8 in flight', 'calls/s')],
  fanout: [lat('p50_us', 'p50 until all have it'), lat('p99_us', 'p99 until all have it')],
};

interface TargetSpec {
  name: string;
  workload: Workload;
  key: number;
  metric: string;
  op: '>=' | '<=';
  threshold: number;
}

export const TARGETS: TargetSpec[] = [
  { name: 'concurrent calls @64', workload: 'concurrent', key: 64, metric: 'calls_per_s', op: '>=', threshold: 0.85 },
  { name: 'casts', workload: 'cast', key: CAST_WINDOW, metric: 'msgs_per_s', op: '>=', threshold: 0.85 },
  { name: 'sequential p50 latency', workload: 'seq', key: 1, metric: 'p50_us', op: '<=', threshold: 1.2 },
];

/** Soak: "flat" means grown by less than this fraction of the start plus this slack. */
export const SOAK_FLAT = { fraction: 0.1, rssSlack: 8 << 20, heapSlack: 4 << 20 };

export interface Report {
  rows: Row[];
  targets: TargetResult[];
}

function find(results: ResultRecord[], impl: Impl, workload: Workload, key: number): ResultRecord | undefined {
  return results.find((r) => r.impl === impl && r.workload === workload && r.key === key);
}

export function buildReport(results: ResultRecord[], workloads: Workload[], soakRun: boolean, smoke: boolean): Report {
  const rows: Row[] = [];
  const targets: TargetResult[] = [];

  for (const workload of workloads) {
    if (workload === 'soak') continue;
    const keys = [...new Set(results.filter((r) => r.workload === workload).map((r) => r.key))];
    for (const key of keys) {
      const any = results.find((r) => r.workload === workload && r.key === key)!;
      const cpuOf = (impl: Impl) => find(results, impl, workload, key)?.metrics.cpu_us_per_op;
      const cb = cpuOf('baseline');
      const cc = cpuOf('courier');
      const cpu = { baseline: cb, courier: cc, ratio: cb && cc !== undefined ? cc / cb : undefined, memory: cpuOf('memory') };
      for (const [i, spec] of PRIMARY[workload].entries()) {
        const b = find(results, 'baseline', workload, key)?.metrics[spec.key];
        const c = find(results, 'courier', workload, key)?.metrics[spec.key];
        const m = find(results, 'memory', workload, key)?.metrics[spec.key];
        const row: Row = {
          workload,
          case: any.label,
          metric: spec.name,
          unit: spec.unit,
          better: spec.better,
          baseline: b,
          courier: c,
          ratio: b !== undefined && c !== undefined && b > 0 ? c / b : undefined,
          memory: m,
          memoryUsPerOp: m === undefined ? undefined : spec.better === 'higher' ? 1e6 / m : m,
          cpu: i === 0 ? cpu : undefined,
        };
        const t = TARGETS.find((t) => t.workload === workload && t.key === key && t.metric === spec.key);
        if (t) {
          row.target = {
            name: t.name,
            rule: `${t.op} ${t.threshold}x`,
            value: row.ratio,
            pass: row.ratio === undefined ? undefined : t.op === '>=' ? row.ratio >= t.threshold : row.ratio <= t.threshold,
            note: row.ratio === undefined ? 'not measured' : smoke ? 'smoke run: too short to mean anything' : undefined,
          };
          targets.push(row.target);
        }
        rows.push(row);
      }
    }
  }

  for (const t of TARGETS) {
    if (!targets.some((x) => x.name === t.name)) {
      targets.push({ name: t.name, rule: `${t.op} ${t.threshold}x`, note: 'workload not run' });
    }
  }

  const soak = results.find((r) => r.workload === 'soak' && r.impl === 'courier');
  if (soak) {
    const m = soak.metrics;
    const mib = (v: number) => (v / (1 << 20)).toFixed(1);
    const grow = (a: number, b: number) => `${mib(a)} -> ${mib(b)} MiB (${b >= a ? '+' : ''}${(((b - a) / a) * 100).toFixed(1)}%)`;
    const flat = (a: number, b: number, slack: number) => b <= a * (1 + SOAK_FLAT.fraction) + slack;
    const push = (who: 'server' | 'client', what: 'rss' | 'heap', slack: number) => {
      const a = m[`${who}_${what}_start`];
      const b = m[`${who}_${what}_end`];
      if (a === undefined || b === undefined) return;
      const target: TargetResult = {
        name: `soak: ${who} ${what === 'rss' ? 'RSS' : 'heap'} flat`,
        rule: `< +${SOAK_FLAT.fraction * 100}% + ${slack >> 20} MiB`,
        value: b / a,
        pass: flat(a, b, slack),
        note: smoke ? 'smoke run: too short to mean anything' : undefined,
      };
      targets.push(target);
      rows.push({
        workload: 'soak',
        case: `${soak.label}, ${Math.round(m.seconds)} s`,
        metric: `${who} ${what === 'rss' ? 'RSS' : 'heap after GC'}`,
        unit: 'MiB',
        better: 'lower',
        text: { courier: grow(a, b) },
        target,
      });
    };
    push('server', 'rss', SOAK_FLAT.rssSlack);
    push('client', 'rss', SOAK_FLAT.rssSlack);
    push('server', 'heap', SOAK_FLAT.heapSlack);
    push('client', 'heap', SOAK_FLAT.heapSlack);
    rows.push({
      workload: 'soak',
      case: `${soak.label}, ${Math.round(m.seconds)} s`,
      metric: 'throughput',
      unit: 'calls/s',
      better: 'higher',
      courier: m.calls_per_s,
    });
  } else {
    targets.push({
      name: 'soak: memory flat',
      rule: `< +${SOAK_FLAT.fraction * 100}% + ${SOAK_FLAT.rssSlack >> 20} MiB`,
      note: soakRun ? 'soak failed' : `not run: add --soak 60 (${SOAK_INFLIGHT} in flight)`,
    });
  }
  return { rows, targets };
}

export function fmtNumber(v: number | undefined, unit: string): string {
  if (v === undefined || Number.isNaN(v)) return '-';
  if (unit === 'µs') return v < 100 ? v.toFixed(1) : Math.round(v).toLocaleString('en-US');
  if (v >= 100) return Math.round(v).toLocaleString('en-US');
  return v.toFixed(1);
}

const fmtRatio = (r: number | undefined): string => (r === undefined ? '-' : `${r.toFixed(2)}x`);

export function renderTable(report: Report, color: boolean): string {
  const paint = (s: string, code: number) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const verdict = (t: TargetResult | undefined): string => {
    if (!t) return '';
    if (t.pass === undefined) return `${t.rule} ${t.note ?? ''}`.trim();
    return `${t.rule} ${t.pass ? paint('PASS', 32) : paint('FAIL', 31)}${t.note ? ' (smoke)' : ''}`;
  };
  const header = ['workload', 'case', 'metric', 'unit', 'baseline', 'courier', 'ratio', 'memory://', 'cpu base', 'cpu courier', 'cpu ratio', 'cpu mem', 'target'];
  const right = new Set([4, 5, 6, 7, 8, 9, 10, 11]);
  const body = report.rows.map((r) => [
    r.workload,
    r.case,
    r.metric,
    r.unit,
    r.text?.baseline ?? fmtNumber(r.baseline, r.unit),
    r.text?.courier ?? fmtNumber(r.courier, r.unit),
    fmtRatio(r.ratio),
    r.text?.memory ?? fmtNumber(r.memory, r.unit),
    r.cpu ? fmtNumber(r.cpu.baseline, 'µs') : '',
    r.cpu ? fmtNumber(r.cpu.courier, 'µs') : '',
    r.cpu ? fmtRatio(r.cpu.ratio) : '',
    r.cpu ? fmtNumber(r.cpu.memory, 'µs') : '',
    verdict(r.target),
  ]);
  // eslint-disable-next-line no-control-regex
  const visible = (s: string) => s.replace(/\x1b\[\d+m/g, '').length;
  const widths = header.map((h, i) => Math.max(visible(h), ...body.map((row) => visible(row[i]))));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => {
        const pad = ' '.repeat(widths[i] - visible(c));
        return right.has(i) ? pad + c : c + pad;
      })
      .join('  ')
      .trimEnd();
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  ')];
  let last: Workload | undefined;
  for (let i = 0; i < body.length; i++) {
    if (last !== undefined && report.rows[i].workload !== last) out.push('');
    last = report.rows[i].workload;
    out.push(line(body[i]));
  }
  out.push('');
  out.push('ratio = courier / baseline. cpu = CPU µs per operation (call, cast, streamed item, fanout round),');
  out.push('client and server processes together (memory://: the one process). Broker CPU is not included.');
  out.push('');
  out.push('Targets (Courier vs the raw amqplib baseline, same run, same broker):');
  for (const t of report.targets) {
    const mark = t.pass === undefined ? paint('n/a ', 33) : t.pass ? paint('PASS', 32) : paint('FAIL', 31);
    const value = t.value === undefined ? '' : ` got ${t.value.toFixed(2)}x`;
    out.push(`  ${mark}  ${t.name}: ${t.rule}${value}${t.note ? `  [${t.note}]` : ''}`);
  }
  return out.join('\n');
}
