import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startServer, TestClient } from './helpers.js';

describe('graceful shutdown', () => {
  it('delivers queued messages, sends shutdown, closes with 4091', async () => {
    const srv = await startServer();
    const c = await TestClient.connect(`${srv.ws}/ws`);
    await c.join('last-words');
    const n = 200;
    for (let i = 0; i < n; i++) void srv.sb.node.publish('last-words', { i });
    const closing = srv.close();
    const got: number[] = [];
    for (let i = 0; i < n; i++) got.push((await c.next('message')).data.i as number);
    assert.deepEqual(got, Array.from({ length: n }, (_, i) => i));
    await c.next('shutdown');
    assert.equal((await c.closed).code, 4091);
    await closing;
    await assert.rejects(TestClient.connect(`${srv.ws}/ws`));
  });

  it('the CLI exits 0 on SIGTERM after closing clients with 4091', async () => {
    const cli = fileURLToPath(new URL('../src/cli.js', import.meta.url));
    const child = spawn(process.execPath, [cli, 'serve', '--port', '0', '--host', '127.0.0.1', '--log-level', 'silent', '--set', 'store.sqlitePath=:memory:'], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m: { port: number }) => resolve(m.port));
      child.once('exit', (code) => reject(new Error(`cli exited early with ${code}`)));
    });
    const c = await TestClient.connect(`ws://127.0.0.1:${port}/ws`);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal((await c.closed).code, 4091);
    assert.equal(await exited, 0);
  });
});
