import type { CoreContext } from '../context.js';
import type { StreamRestore } from './stream-restore.js';

/** A history page request (the `history` command's data). */
export interface HistoryRequest {
  limit?: number;
  /** Publications with offset < before, newest first. */
  before?: number;
  /** Publications with offset > after, oldest first. */
  after?: number;
  /** Seed 000 form: skip this many newest publications. */
  offset?: number;
}

/** A history page as the `history` frame carries it. */
export interface HistoryPage {
  channel: string;
  /** Full `message` frames (with seq and epoch). */
  publications: Array<Record<string, unknown>>;
  /** Broker window: the stream's top. */
  offset?: number;
  epoch?: string;
  /** Durable archive (`persist` namespaces): more pages exist. */
  has_more?: boolean;
  source?: 'archive';
}

/**
 * Channel history: the durable archive for `persist` namespaces, the broker's window otherwise. Reading the
 * history of a channel nobody published to creates nothing (the engines do not keep empty streams).
 */
export class History {
  constructor(
    private readonly ctx: Pick<CoreContext, 'broker' | 'namespaces' | 'durability'>,
    private readonly restore: StreamRestore,
  ) {}

  /** Read one page of a channel's history. */
  async read(channel: string, q: HistoryRequest): Promise<HistoryPage> {
    const limit = q.limit ?? 50;
    const durability = this.ctx.durability;
    if (this.ctx.namespaces.of(channel).persist && durability !== null && durability.hasArchive) {
      const page = await durability.history(channel, { limit, before: q.before, after: q.after, skip: q.offset });
      const publications = page.publications.map((p) => ({ ...JSON.parse(p.frame), seq: p.offset, epoch: p.epoch }));
      return { channel, publications, has_more: page.hasMore, source: 'archive' };
    }
    const restoring = this.restore.ensure(channel);
    if (restoring !== undefined) await restoring;
    const broker = this.ctx.broker;
    let before = q.before;
    let result;
    if (q.after !== undefined) {
      const position = await broker.position(channel);
      result = await broker.history(channel, { since: { offset: q.after, epoch: position.epoch }, limit });
    } else {
      if (before === undefined && q.offset !== undefined) before = (await broker.position(channel)).offset - q.offset + 1;
      result = await broker.history(channel, { before, limit });
    }
    const publications = result.publications.map((p) => ({ ...JSON.parse(p.frame), seq: p.offset, epoch: p.epoch }));
    return { channel, publications, offset: result.position.offset, epoch: result.position.epoch };
  }
}
