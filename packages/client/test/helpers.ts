import net from 'node:net';
import { WebSocket } from 'ws';
import { Switchboard, type DeepPartial, type SwitchboardConfig, type SwitchboardOptions } from '@switchboard/server';
import { SwitchboardClient, type SwitchboardClientOptions } from '@switchboard/client';

/**
 * The client events after which a test can see something new: every frame from the server (emitted before
 * the SDK handles it), every status change, disconnect, reconnect attempt and token refresh.
 */
const CLIENT_EVENTS = ['frame', 'status', 'connected', 'disconnected', 'reconnect_attempt', 'token_refreshed', 'error'] as const;

/**
 * Resolves once `cond()` holds: checked now and after every event of `clients` (see CLIENT_EVENTS), in a
 * microtask so the SDK has finished handling the frame first. An event-driven wait: no timer polls; throws
 * naming `what` after `timeoutMs`.
 */
export function until(clients: SwitchboardClient | SwitchboardClient[], cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  if (cond()) return Promise.resolve();
  const list = Array.isArray(clients) ? clients : [clients];
  return new Promise((resolve, reject) => {
    const offs: Array<() => void> = [];
    const stop = (): void => {
      clearTimeout(timer);
      for (const off of offs) off();
    };
    const check = (): void => {
      try {
        if (!cond()) return;
      } catch (err) {
        stop();
        reject(err);
        return;
      }
      stop();
      resolve();
    };
    const onEvent = (): void => queueMicrotask(check);
    for (const c of list) for (const e of CLIENT_EVENTS) offs.push(c.on(e, onEvent));
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`));
    }, timeoutMs);
  });
}

/** `promise`, or a rejection naming `what` after `ms` (a deadline, not a delay: the timer is cleared on settle). */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for: ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

export interface TestServer {
  sb: Switchboard;
  port: number;
  /** ws://127.0.0.1:PORT/ws */
  url: string;
  close(): Promise<void>;
}

/** A real Switchboard (memory engine) on 127.0.0.1; `port` 0 picks a free one. */
export async function startServer(config: DeepPartial<SwitchboardConfig> = {}, options: SwitchboardOptions = {}, port = 0): Promise<TestServer> {
  const sb = await Switchboard.create(
    { host: '127.0.0.1', port, log: { level: 'silent' }, shutdown: { deadlineMs: 2000 }, store: { sqlitePath: ':memory:' }, ...config },
    { defaultMetrics: false, ...options },
  );
  const bound = await sb.listen();
  let closed = false;
  return {
    sb,
    port: bound,
    url: `ws://127.0.0.1:${bound}/ws`,
    close: async () => {
      if (closed) return;
      closed = true;
      await sb.close();
    },
  };
}

/** Tracks clients so a test's teardown closes every one. */
export class Clients {
  private readonly all: SwitchboardClient[] = [];

  /** A client using the `ws` package (Node 20 has no global WebSocket) with fast test backoff. */
  make(url: string, options: Partial<SwitchboardClientOptions> = {}): SwitchboardClient {
    const client = new SwitchboardClient({
      url,
      WebSocket,
      reconnect: { baseDelayMs: 20, maxDelayMs: 200, ...options.reconnect },
      requestTimeoutMs: 3000,
      ...options,
    });
    this.all.push(client);
    return client;
  }

  closeAll(): void {
    for (const c of this.all) c.close();
    this.all.length = 0;
  }
}

/** Records every status a client goes through. */
export function recordStatuses(client: SwitchboardClient): string[] {
  const seen: string[] = [client.status];
  client.on('status', ({ status }) => seen.push(status));
  return seen;
}

/**
 * A TCP proxy in front of the server, to simulate network trouble with real sockets:
 * `forward` (normal), `refuse` (new connections are destroyed at once), `blackhole` (new and existing
 * connections stay open but no byte passes), `setDeaf()` (acks lost: only server -> client bytes of the
 * current connections are dropped) and `cut()` to destroy every live connection.
 */
export class TcpProxy {
  mode: 'forward' | 'refuse' | 'blackhole' = 'forward';
  /** Drop server -> client bytes of the connections open now (new ones are not affected). */
  private deaf = new Set<net.Socket>();
  private readonly server: net.Server;
  private readonly pairs = new Set<[net.Socket, net.Socket]>();
  port = 0;

  constructor(private targetPort: number) {
    this.server = net.createServer((client) => this.onConnection(client));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this.port;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  retarget(port: number): void {
    this.targetPort = port;
  }

  get connections(): number {
    return this.pairs.size;
  }

  private onConnection(client: net.Socket): void {
    client.on('error', () => {});
    if (this.mode === 'refuse') {
      client.destroy();
      return;
    }
    const upstream = net.connect(this.targetPort, '127.0.0.1');
    upstream.on('error', () => client.destroy());
    const pair: [net.Socket, net.Socket] = [client, upstream];
    this.pairs.add(pair);
    const drop = (): void => {
      this.pairs.delete(pair);
      this.deaf.delete(client);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', drop);
    upstream.on('close', drop);
    client.on('data', (chunk) => {
      if (this.mode !== 'blackhole') upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (this.mode !== 'blackhole' && !this.deaf.has(client)) client.write(chunk);
    });
  }

  /** Makes the connections open now deaf (server -> client dropped) or restores them. */
  setDeaf(on: boolean): void {
    if (!on) this.deaf.clear();
    else for (const [client] of this.pairs) this.deaf.add(client);
  }

  /** Destroys every live connection (both sides see a reset, no close frame). */
  cut(): void {
    for (const [a, b] of [...this.pairs]) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A frame the client sent, as parsed JSON. */
export interface SentFrame {
  type: string;
  data?: Record<string, unknown>;
  id?: string | number;
}

/**
 * A `ws` WebSocket constructor that records every frame the client sends (parsed), in order, into `sent`:
 * lets a test count the `join_channel` frames for one channel over real sockets.
 */
export function recordingWebSocket(sent: SentFrame[]): typeof WebSocket {
  return class RecordingWebSocket extends WebSocket {
    override send(data: unknown, ...rest: unknown[]): void {
      try {
        sent.push(JSON.parse(String(data)) as SentFrame);
      } catch {
        /* not JSON: not ours */
      }
      (super.send as (...args: unknown[]) => void).call(this, data, ...rest);
    }
  };
}

/** The `join_channel` frames in `sent` for `channel`. */
export function joinsFor(sent: readonly SentFrame[], channel: string): SentFrame[] {
  return sent.filter((f) => f.type === 'join_channel' && f.data?.channel === channel);
}

/** A server, a TCP proxy in front of it (for cutting connections) and a client factory, all closed after the test. */
export async function setupProxied(t: { after(fn: () => unknown): void }, config: DeepPartial<SwitchboardConfig> = {}): Promise<{ srv: TestServer; clients: Clients; proxy: TcpProxy }> {
  const srv = await startServer(config);
  const clients = new Clients();
  const proxy = new TcpProxy(srv.port);
  await proxy.listen();
  t.after(async () => {
    clients.closeAll();
    await proxy.close();
    await srv.close();
  });
  return { srv, clients, proxy };
}
