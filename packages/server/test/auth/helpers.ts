/** Test helpers: token minting with jose and a real HTTP server that runs `auth.authenticate`. */
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, type JWTPayload, type CryptoKey, type KeyObject } from 'jose';
import type { Auth, AuthenticateOptions, AuthResult } from '../../src/auth/index.js';

export const SECRET = 'test-secret-0123456789-abcdefghijklmnopqrstuvwxyz';

export interface MintOptions {
  alg: string;
  key: CryptoKey | KeyObject | Uint8Array;
  kid?: string;
  sub?: string | null;
  /** Seconds from now; null = no exp claim. Default 3600. */
  expIn?: number | null;
  nbfIn?: number;
  iss?: string;
  aud?: string | string[];
  claims?: JWTPayload;
}

/** Mints a JWT with jose. */
export async function mint(o: MintOptions): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: JWTPayload = { ...o.claims };
  if (o.sub !== null) payload.sub = o.sub ?? 'user-1';
  if (o.expIn !== null) payload.exp = now + (o.expIn ?? 3600);
  if (o.nbfIn !== undefined) payload.nbf = now + o.nbfIn;
  if (o.iss !== undefined) payload.iss = o.iss;
  if (o.aud !== undefined) payload.aud = o.aud;
  const header: { alg: string; kid?: string } = { alg: o.alg };
  if (o.kid) header.kid = o.kid;
  return new SignJWT(payload).setProtectedHeader(header).setIssuedAt(now).sign(o.key);
}

export function hmacKey(secret = SECRET): Uint8Array { return new TextEncoder().encode(secret); }

/** A real HTTP server whose every request is answered with the JSON of `auth.authenticate(req, url, opts)`. */
export async function startAuthServer(auth: Auth, opts: AuthenticateOptions = {}): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const server = createServer((req: IncomingMessage, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    auth.authenticate(req, url, opts).then((r) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(r));
    }, (e: unknown) => {
      res.writeHead(500);
      res.end(String(e));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** GET `path` with headers; returns the AuthResult the server computed. */
export function ask(base: string, path: string, headers: Record<string, string | string[]> = {}): Promise<AuthResult> {
  return new Promise((resolve, reject) => {
    const req = request(base + path, { method: 'GET', headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => {
        try { resolve(JSON.parse(body) as AuthResult); } catch (e) { reject(new Error(`bad body ${res.statusCode}: ${body}`)); }
      });
    });
    req.on('error', reject);
    req.end();
  });
}
