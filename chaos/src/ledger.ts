/**
 * The accounting of a chaos run, kept apart from any socket so it can be unit-tested.
 *
 * Ground truth per channel: every position (epoch, offset) that a publisher got an `ok` for, plus every position
 * any subscriber received (a publication whose ack was lost is still a publication). Positions are ordered by
 * epoch (in the order epochs were first seen) and by offset inside an epoch; each gets an index.
 *
 * Each subscriber keeps a log per channel: where it started (`subscribed` of its first join), every publication
 * it received, and every `recovered: false` it was told (`subscribed` of a rejoin or an unrequested
 * `replay_complete`), with the position the server gave. The analysis walks the log with a cursor:
 *  - a publication already received is a DUPLICATE; one whose index is below the cursor otherwise is OUT OF ORDER;
 *  - publications of the truth skipped between the cursor and the next one received are LOST WITHOUT WARNING;
 *  - a `recovered: false` moves the cursor to the position it announces: the publications skipped are LOST BUT
 *    FLAGGED (the contract allows it: the client knows it has a gap);
 *  - at the end every subscriber is connected and caught up: publications after its cursor are lost without
 *    warning too.
 * Losses are attributed to the phase in which the missing publication was made (acked, or first seen), duplicates
 * and reorders to the phase in which they arrived, flags to the phase in which they came.
 */

export interface Pos { epoch: string; offset: number }

interface TruthEntry { epoch: string; offset: number; firstSeen: number; acked: boolean; index: number }

export type LogEvent =
  | { kind: 'start'; t: number; epoch: string; offset: number }
  | { kind: 'msg'; t: number; epoch: string; offset: number }
  | { kind: 'flag'; t: number; epoch: string; offset: number; via: 'subscribed' | 'replay_complete' }
  /** A new connection (for the record: the analysis ignores it). */
  | { kind: 'conn'; t: number; node: string; connectionId: string; since: string | null };

export interface PhaseCounts {
  unflaggedLost: number;
  flaggedLost: number;
  /** Of flaggedLost: publications of the epoch the flag announced (published after the epoch changed, before the
   * position the server gave): the server had them in its new stream but did not replay them. */
  flaggedLostNewEpoch: number;
  flags: number;
  duplicates: number;
  outOfOrder: number;
}

export interface Issue { kind: 'lost' | 'duplicate' | 'out_of_order'; subscriber: string; channel: string; epoch: string; offset: number; phase: string; detail?: string }

export function emptyCounts(): PhaseCounts {
  return { unflaggedLost: 0, flaggedLost: 0, flaggedLostNewEpoch: 0, flags: 0, duplicates: 0, outOfOrder: 0 };
}

export class ChannelTruth {
  private readonly entries = new Map<string, TruthEntry>();
  private ordered: TruthEntry[] | null = null;
  private epochFirstSeen = new Map<string, number>();

  constructor(readonly channel: string) {}

  /** A position acked to a publisher (`acked`) or received by a subscriber, at time `t`. */
  record(epoch: string, offset: number, t: number, acked: boolean): void {
    const key = `${epoch}:${offset}`;
    const e = this.entries.get(key);
    if (e) {
      if (t < e.firstSeen) e.firstSeen = t;
      e.acked ||= acked;
    } else {
      this.entries.set(key, { epoch, offset, firstSeen: t, acked, index: -1 });
    }
    const f = this.epochFirstSeen.get(epoch);
    if (f === undefined || t < f) this.epochFirstSeen.set(epoch, t);
    this.ordered = null;
  }

  get size(): number { return this.entries.size; }
  get ackedCount(): number { let n = 0; for (const e of this.entries.values()) if (e.acked) n++; return n; }

  /** Positions in order (epochs by first sight, offsets ascending), with their index set. */
  order(): TruthEntry[] {
    if (this.ordered) return this.ordered;
    const out = [...this.entries.values()].sort((a, b) =>
      a.epoch === b.epoch ? a.offset - b.offset : this.epochFirstSeen.get(a.epoch)! - this.epochFirstSeen.get(b.epoch)! || (a.epoch < b.epoch ? -1 : 1));
    out.forEach((e, i) => { e.index = i; });
    this.ordered = out;
    return out;
  }

  /** The last position of the truth, if any. */
  last(): Pos | undefined {
    const o = this.order();
    const e = o[o.length - 1];
    return e ? { epoch: e.epoch, offset: e.offset } : undefined;
  }

  indexOf(epoch: string, offset: number): number {
    this.order();
    return this.entries.get(`${epoch}:${offset}`)?.index ?? -1;
  }

  /**
   * Index of the last truth position at or before `pos`: in its epoch, the greatest offset <= pos.offset (or just
   * before the epoch's first position); an epoch never seen (nothing of it was published or received) stands
   * after every epoch first seen by time `t`.
   */
  floorIndex(pos: Pos, t: number): number {
    const o = this.order();
    let first = -1;
    let best = -1;
    for (const e of o) {
      if (e.epoch !== pos.epoch) continue;
      if (first < 0) first = e.index;
      if (e.offset <= pos.offset) best = e.index;
    }
    if (best >= 0) return best;
    if (first >= 0) return first - 1;
    let j = -1;
    for (const e of o) if (this.epochFirstSeen.get(e.epoch)! <= t) j = e.index;
    return j;
  }

  at(i: number): TruthEntry { return this.order()[i]!; }
}

export interface AnalysisInput {
  truth: Map<string, ChannelTruth>;
  /** subscriber id -> channel -> log */
  logs: Map<string, Map<string, LogEvent[]>>;
  phaseOf: (t: number) => string;
  /** Whether publications after a subscriber's last received one count as lost (it was caught up at the end). */
  checkTail: boolean;
}

export interface AnalysisResult {
  byPhase: Map<string, PhaseCounts>;
  issues: Issue[];
  /** Publications checked (truth positions times subscribers covering them). */
  checked: number;
}

const MAX_ISSUES = 200;

export function analyze(input: AnalysisInput): AnalysisResult {
  const byPhase = new Map<string, PhaseCounts>();
  const counts = (phase: string): PhaseCounts => {
    let c = byPhase.get(phase);
    if (!c) byPhase.set(phase, (c = emptyCounts()));
    return c;
  };
  const issues: Issue[] = [];
  const issue = (i: Issue): void => { if (issues.length < MAX_ISSUES) issues.push(i); };
  let checked = 0;
  for (const [sub, channels] of input.logs) {
    for (const [channel, log] of channels) {
      const truth = input.truth.get(channel);
      if (!truth) continue;
      const order = truth.order();
      const seen = new Set<string>();
      let cursor: number | null = null;
      const lose = (from: number, to: number, flagged: boolean, flagEpoch?: string): void => {
        // truth indexes in (from, to]
        const fromEpoch = from >= 0 ? order[from]!.epoch : undefined;
        for (let i = from + 1; i <= to; i++) {
          const e = order[i]!;
          const phase = input.phaseOf(e.firstSeen);
          if (flagged) {
            counts(phase).flaggedLost++;
            if (e.epoch === flagEpoch && e.epoch !== fromEpoch) counts(phase).flaggedLostNewEpoch++;
          }
          else {
            counts(phase).unflaggedLost++;
            issue({ kind: 'lost', subscriber: sub, channel, epoch: e.epoch, offset: e.offset, phase });
          }
        }
      };
      for (const ev of log) {
        if (ev.kind === 'conn') continue;
        if (ev.kind === 'start') {
          if (cursor === null) cursor = truth.floorIndex(ev, ev.t);
          continue;
        }
        if (cursor === null) cursor = -1; // no start seen: everything counts
        if (ev.kind === 'flag') {
          counts(input.phaseOf(ev.t)).flags++;
          const j = truth.floorIndex(ev, ev.t);
          if (j > cursor) { lose(cursor, j, true, ev.epoch); cursor = j; }
          continue;
        }
        const key = `${ev.epoch}:${ev.offset}`;
        const i = truth.indexOf(ev.epoch, ev.offset);
        const phase = input.phaseOf(ev.t);
        if (seen.has(key)) {
          counts(phase).duplicates++;
          issue({ kind: 'duplicate', subscriber: sub, channel, epoch: ev.epoch, offset: ev.offset, phase });
          continue;
        }
        seen.add(key);
        if (i <= cursor) {
          counts(phase).outOfOrder++;
          const c = order[cursor];
          issue({ kind: 'out_of_order', subscriber: sub, channel, epoch: ev.epoch, offset: ev.offset, phase, detail: c ? `after ${c.epoch}:${c.offset}` : undefined });
          continue;
        }
        lose(cursor, i - 1, false);
        checked += i - cursor;
        cursor = i;
      }
      if (input.checkTail && cursor !== null && order.length > 0) {
        const end = order.length - 1;
        if (end > cursor) { lose(cursor, end, false); checked += end - cursor; }
      }
    }
  }
  return { byPhase, issues, checked };
}
