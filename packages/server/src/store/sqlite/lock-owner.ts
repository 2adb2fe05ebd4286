import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';

/**
 * node-sqlite3-wasm locks a database file by creating the directory `<file>.lock`, and only removes it on
 * close: a process that crashes (or is killed with SIGKILL) leaves it behind, and every later open of the file
 * fails with "database is locked". We record the owner (`<file>.lock-owner`: host and pid) next to it, and
 * before opening remove a lock whose owner process on this host no longer exists.
 */
export function ownerFile(dbPath: string): string {
  return `${dbPath}.lock-owner`;
}

/** Remove `<dbPath>.lock` if its recorded owner is a dead process on this host. Returns true if it did. */
export function clearStaleLock(dbPath: string): boolean {
  let owner: { host?: unknown; pid?: unknown };
  try {
    owner = JSON.parse(readFileSync(ownerFile(dbPath), 'utf8'));
  } catch {
    return false; // no owner record: leave any lock alone (it may belong to a live process of an older build)
  }
  if (owner.host !== hostname() || typeof owner.pid !== 'number' || owner.pid === process.pid || isAlive(owner.pid)) return false;
  rmSync(`${dbPath}.lock`, { recursive: true, force: true });
  rmSync(ownerFile(dbPath), { force: true });
  return true;
}

/** Record this process as the holder of the lock (call after the exclusive lock was taken). */
export function recordOwner(dbPath: string): void {
  writeFileSync(ownerFile(dbPath), JSON.stringify({ host: hostname(), pid: process.pid }));
}

/** Remove this process's owner record (on close). */
export function forgetOwner(dbPath: string): void {
  rmSync(ownerFile(dbPath), { force: true });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
