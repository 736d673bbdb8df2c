/**
 * GET /v1/runs/{id}/events/stream over a real socket: message format, resume after
 * Last-Event-ID, the end after the terminal status event, live delivery woken by the
 * change feed (in process) and by NOTIFY (another server on the same PostgreSQL).
 * The streams' periodic re-check is set to ten minutes here, so an event that arrives
 * within the test's timeout can only have come through a wake-up.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type LedgerEvent, type OpenedLedger, openLedger, type RunningServer, startServer } from '../../src/index.js';
import { dropSchemas, freshSchema, freshStore, onPostgres, PG_URL } from '../helpers.js';

const NO_RECHECK = { recheckMs: 600_000 };

let ledger: OpenedLedger;
let server: RunningServer;

beforeAll(async () => {
  ledger = await freshStore();
  server = await startServer({ ledger, port: 0, logger: false, reapIntervalS: 0, webRoot: false, stream: NO_RECHECK });
});
afterAll(async () => {
  await server?.close();
  await ledger?.close();
  await dropSchemas();
});

interface Frame {
  raw: string;
  id?: string;
  data?: string;
  comment?: string;
}

/** Reads an SSE response frame by frame (no client library: this tests the wire format). */
function frames(res: Response) {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  return {
    async next(): Promise<Frame | null> {
      for (;;) {
        const end = buffer.indexOf('\n\n');
        if (end >= 0) {
          const raw = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const frame: Frame = { raw };
          for (const line of raw.split('\n')) {
            if (line.startsWith(':')) frame.comment = line.slice(1).trim();
            else if (line.startsWith('id: ')) frame.id = line.slice(4);
            else if (line.startsWith('data: ')) frame.data = line.slice(6);
          }
          return frame;
        }
        const { done, value } = await reader.read();
        if (done) return null;
        buffer += decoder.decode(value, { stream: true });
      }
    },
    /** The next event (skipping `retry:` and comments), or null when the stream ended. */
    async event(): Promise<LedgerEvent | null> {
      for (;;) {
        const f = await this.next();
        if (!f) return null;
        if (f.data !== undefined) {
          const e = JSON.parse(f.data) as LedgerEvent;
          expect(f.id).toBe(String(e.seq));
          return e;
        }
      }
    },
    async rest(): Promise<LedgerEvent[]> {
      const out: LedgerEvent[] = [];
      for (let e = await this.event(); e; e = await this.event()) out.push(e);
      return out;
    },
    cancel: () => reader.cancel(),
  };
}

const open = (base: string, runId: string, init: { lastEventId?: string; query?: string; namespace?: string } = {}) =>
  fetch(`${base}/v1/runs/${runId}/events/stream${init.query ?? ''}`, {
    headers: init.lastEventId === undefined ? {} : { 'last-event-id': init.lastEventId },
  });

describe('event stream', () => {
  it('sends `id: <seq>` and `data: <event JSON>` without an `event:` field, and ends after the terminal status event', async () => {
    const run = await ledger.startRun({ job: 'sse' });
    await run.event('log', { line: 'hello' });
    await run.complete({ output: 1 });
    const res = await open(server.url, run.id);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const text = await res.text();
    expect(text).not.toMatch(/^event:/m);
    const blocks = text.split('\n\n').filter((b) => b.includes('data: '));
    expect(blocks.map((b) => b.split('\n')[0])).toEqual(['id: 1', 'id: 2', 'id: 3']);
    const last = JSON.parse(blocks[2].split('\n')[1].slice(6));
    expect(last).toMatchObject({ runId: run.id, seq: 3, type: 'run.status', body: { status: 'completed' } });
  });

  it('delivers live events as they are written and ends with the run', async () => {
    const run = await ledger.startRun({ job: 'sse' });
    const stream = frames(await open(server.url, run.id));
    expect((await stream.event())!.seq).toBe(1);
    await run.event('progress', { done: 1 });
    expect(await stream.event()).toMatchObject({ seq: 2, type: 'progress', body: { done: 1 } });
    await run.checkpoint({ name: 'cp', metadata: {} });
    expect(await stream.event()).toMatchObject({ seq: 3, type: 'run.checkpoint' });
    await run.fail({ error: { message: 'boom' } });
    expect(await stream.event()).toMatchObject({ seq: 4, type: 'run.status', body: { status: 'failed' } });
    expect(await stream.event()).toBeNull();
  });

  it('resumes after Last-Event-ID (or ?afterSeq), and a resume after the terminal event ends at once', async () => {
    const run = await ledger.startRun({ job: 'sse' });
    await run.events([1, 2, 3, 4].map((i) => ({ type: 'n', body: i })));
    await run.complete({});
    const seqs = async (res: Response) => (await frames(res).rest()).map((e) => e.seq);
    expect(await seqs(await open(server.url, run.id, { lastEventId: '3' }))).toEqual([4, 5, 6]);
    expect(await seqs(await open(server.url, run.id, { query: '?afterSeq=4' }))).toEqual([5, 6]);
    // Last-Event-ID wins over afterSeq (it is what a reconnecting EventSource sends).
    expect(await seqs(await open(server.url, run.id, { lastEventId: '5', query: '?afterSeq=1' }))).toEqual([6]);
    expect(await seqs(await open(server.url, run.id, { lastEventId: '6' }))).toEqual([]);
  });

  it('streams a long log in order across pages', async () => {
    const run = await ledger.startRun({ job: 'sse' });
    for (let i = 0; i < 3; i++) await run.events(Array.from({ length: 900 }, (_, j) => ({ type: 'n', body: i * 900 + j })));
    await run.complete({});
    const events = await frames(await open(server.url, run.id)).rest();
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 2702 }, (_, i) => i + 1));
  });

  it('404 problem for an unknown run, 400 for a Last-Event-ID that is not a seq', async () => {
    const missing = await open(server.url, 'no-such-run');
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect((await missing.json()).code).toBe('not_found');
    const run = await ledger.startRun({ job: 'sse' });
    const bad = await open(server.url, run.id, { lastEventId: 'abc' });
    expect(bad.status).toBe(400);
    expect((await bad.json()).code).toBe('validation_failed');
  });

  it('sends heartbeat comments while idle', async () => {
    const quick = await startServer({
      ledger,
      port: 0,
      logger: false,
      reapIntervalS: 0,
      webRoot: false,
      stream: { ...NO_RECHECK, heartbeatMs: 20 },
    });
    try {
      const run = await ledger.startRun({ job: 'sse' });
      const stream = frames(await open(quick.url, run.id));
      let f: Frame | null;
      do f = await stream.next();
      while (f && f.comment !== 'ping');
      expect(f?.comment).toBe('ping');
      await stream.cancel();
    } finally {
      await quick.close();
    }
  });

  it('closing the server ends open streams; the client resumes elsewhere with Last-Event-ID', async () => {
    const other = await startServer({ ledger, port: 0, logger: false, reapIntervalS: 0, webRoot: false, stream: NO_RECHECK });
    const run = await ledger.startRun({ job: 'sse' });
    const stream = frames(await open(other.url, run.id));
    expect((await stream.event())!.seq).toBe(1);
    await other.close();
    expect(await stream.event()).toBeNull();
    await run.complete({});
    expect((await frames(await open(server.url, run.id, { lastEventId: '1' })).rest()).map((e) => e.seq)).toEqual([2]);
  });

  it.skipIf(!onPostgres)(
    'a write through another server on the same PostgreSQL reaches the stream (LISTEN/NOTIFY; PostgreSQL only)',
    async () => {
      const schema = freshSchema();
      const one = await openLedger({ url: PG_URL, schema, poolSize: 3 });
      const two = await openLedger({ url: PG_URL, schema, poolSize: 3 });
      const writer = await startServer({ ledger: one, port: 0, logger: false, reapIntervalS: 0, webRoot: false });
      const reader = await startServer({ ledger: two, port: 0, logger: false, reapIntervalS: 0, webRoot: false, stream: NO_RECHECK });
      try {
        const post = (path: string, body: unknown) =>
          fetch(`${writer.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        const created = await (await post('/v1/runs', { job: 'cross' })).json();
        const stream = frames(await open(reader.url, created.id));
        expect((await stream.event())!.seq).toBe(1);
        expect((await post(`/v1/runs/${created.id}/events`, { events: [{ type: 'from-writer' }] })).status).toBe(200);
        expect(await stream.event()).toMatchObject({ seq: 2, type: 'from-writer' });
        await post(`/v1/runs/${created.id}/complete`, {});
        expect(await stream.event()).toMatchObject({ seq: 3, body: { status: 'completed' } });
        expect(await stream.event()).toBeNull();
      } finally {
        await reader.close();
        await writer.close();
        await one.close();
        await two.close();
      }
    },
  );
});
