/**
 * A real webhook receiver for tests and benchmarks: an HTTP server on 127.0.0.1 that
 * verifies every delivery with the `standardwebhooks` package, exactly as a receiver in
 * production would, and answers as the test tells it to.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { Webhook } from 'standardwebhooks';

export interface Received {
  id: string;
  timestamp: string;
  /** Verified with standardwebhooks under the receiver's secret. */
  verified: boolean;
  verifyError?: string;
  payload: { type: string; timestamp: string; data: Record<string, unknown> };
  raw: string;
  /** When it arrived (ms since the epoch). */
  at: number;
}

/** What to answer: a status (with headers), or 'hang' (never answer). */
export type Answer = number | { status: number; headers?: Record<string, string> } | 'hang';

export interface Receiver {
  url: string;
  /** Every request received, in arrival order, verified or not. */
  received: Received[];
  /** The signing secret to verify with (set it after creating the webhook). */
  secret: string | undefined;
  /** Decides each answer; default 204. */
  answer: (r: Received, attemptOfThisId: number) => Answer;
  /** Distinct verified webhook-ids: what a deduplicating receiver acts on. */
  uniqueIds(): Set<string>;
  close(): Promise<void>;
}

export async function startReceiver(path = '/hook'): Promise<Receiver> {
  const hanging = new Set<ServerResponse>();
  const seen = new Map<string, number>();
  const receiver: Receiver = {
    url: '',
    received: [],
    secret: undefined,
    answer: () => 204,
    uniqueIds: () => new Set(receiver.received.filter((r) => r.verified).map((r) => r.id)),
    close: async () => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const headers = {
        'webhook-id': String(req.headers['webhook-id'] ?? ''),
        'webhook-timestamp': String(req.headers['webhook-timestamp'] ?? ''),
        'webhook-signature': String(req.headers['webhook-signature'] ?? ''),
      };
      let verified = false;
      let verifyError: string | undefined;
      try {
        if (!receiver.secret) throw new Error('the receiver has no secret yet');
        new Webhook(receiver.secret).verify(raw, headers);
        verified = true;
      } catch (err) {
        verifyError = (err as Error).message;
      }
      let payload: Received['payload'];
      try {
        payload = JSON.parse(raw);
      } catch {
        payload = { type: '', timestamp: '', data: {} };
      }
      const r: Received = {
        id: headers['webhook-id'],
        timestamp: headers['webhook-timestamp'],
        verified,
        verifyError,
        payload,
        raw,
        at: Date.now(),
      };
      receiver.received.push(r);
      const n = (seen.get(r.id) ?? 0) + 1;
      seen.set(r.id, n);
      const a = req.url === path ? receiver.answer(r, n) : 404;
      if (a === 'hang') {
        hanging.add(res);
        return;
      }
      const { status, headers: h } = typeof a === 'number' ? { status: a, headers: {} } : a;
      res.writeHead(status, h);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`;
  return receiver;
}
