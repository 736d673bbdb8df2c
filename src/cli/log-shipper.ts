/**
 * Ships a child process's output lines to a run as `log` events, in batches (every
 * `intervalMs` or `batchLines` lines, whichever comes first), one batch in flight at a
 * time so that seq follows output order. Each line carries an idempotency key, so a batch
 * retried after a lost response is never stored twice. A batch that still cannot be
 * stored is counted in `dropped` (exec records it in the run's statistics): nothing is
 * lost silently, and the child is never killed because logging failed.
 */
import { StringDecoder } from 'node:string_decoder';

import { LedgerError } from '../core/errors.js';
import type { EventInput, RunHandle } from '../core/types.js';

export type Stream = 'stdout' | 'stderr';

export interface LogShipperOptions {
  intervalMs?: number;
  batchLines?: number;
  /** Longest line stored in one event; longer output is split into several events. */
  maxLineChars?: number;
  /** Queued lines above which the child's output is paused until the ledger catches up. */
  highWater?: number;
  /** Called once when a run turns out to be finished elsewhere (cancelled, timed out). */
  onRunFinished?: (err: LedgerError) => void;
  onWarning?: (message: string) => void;
}

const RETRIES = 4;
const BATCH_CHARS = 1_000_000;

// Codes that retrying cannot fix.
const PERMANENT = new Set([
  'validation_failed',
  'not_found',
  'run_finished',
  'key_conflict',
  'unauthorized',
  'forbidden',
  'payload_too_large',
]);

/** Where to split a long line near `max` without separating a surrogate pair (text must stay valid). */
export function cutAt(text: string, max: number): number {
  if (text.length <= max) return text.length;
  const code = text.charCodeAt(max - 1);
  return code >= 0xd800 && code <= 0xdbff && max > 1 ? max - 1 : max;
}

export class LogShipper {
  readonly lines: Record<Stream, number> = { stdout: 0, stderr: 0 };
  dropped = 0;
  private readonly queue: EventInput[] = [];
  private readonly decoders: Record<Stream, StringDecoder> = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
  private readonly partial: Record<Stream, string> = { stdout: '', stderr: '' };
  private counter = 0;
  private inFlight: Promise<void> | null = null;
  private readonly timer: NodeJS.Timeout;
  private stopped = false;
  private warned = false;
  private readonly listeners = new Set<() => void>();
  private readonly opts: Required<Omit<LogShipperOptions, 'onRunFinished' | 'onWarning'>> & LogShipperOptions;

  constructor(
    private readonly run: RunHandle,
    opts: LogShipperOptions = {},
  ) {
    this.opts = { intervalMs: 200, batchLines: 500, maxLineChars: 16_384, highWater: 20_000, ...opts };
    this.timer = setInterval(() => this.kick(), this.opts.intervalMs);
  }

  /** True while the queue is above the high-water mark: the caller should pause the child's pipes. */
  get congested(): boolean {
    return this.queue.length >= this.opts.highWater;
  }

  /** Calls fn whenever a batch is stored (to resume paused pipes). */
  onProgress(fn: () => void): void {
    this.listeners.add(fn);
  }

  /** Feeds raw output; complete lines are queued. */
  write(stream: Stream, chunk: Buffer): void {
    let text = this.partial[stream] + this.decoders[stream].write(chunk);
    let nl: number;
    while ((nl = text.indexOf('\n')) >= 0) {
      this.push(stream, text.slice(0, nl));
      text = text.slice(nl + 1);
    }
    // Output without a newline for long (a progress bar, binary output) is shipped in pieces.
    while (text.length >= this.opts.maxLineChars) {
      const cut = cutAt(text, this.opts.maxLineChars);
      this.pushOne(stream, text.slice(0, cut));
      text = text.slice(cut);
    }
    this.partial[stream] = text;
  }

  /** The stream ended: ship its last line even without a trailing newline. */
  end(stream: Stream): void {
    const rest = this.partial[stream] + this.decoders[stream].end();
    this.partial[stream] = '';
    if (rest) this.push(stream, rest);
  }

  private push(stream: Stream, raw: string): void {
    do {
      const cut = cutAt(raw, this.opts.maxLineChars);
      this.pushOne(stream, raw.slice(0, cut));
      raw = raw.slice(cut);
    } while (raw.length);
  }

  private pushOne(stream: Stream, raw: string): void {
    this.lines[stream]++;
    if (this.stopped) {
      this.dropped++;
      return;
    }
    // PostgreSQL cannot store \u0000 in text or jsonb.
    const line = raw.replace(/\r$/, '').replaceAll('\u0000', '\uFFFD');
    this.queue.push({
      key: `log:${++this.counter}`,
      type: 'log',
      level: stream === 'stderr' ? 'error' : 'info',
      at: new Date().toISOString(),
      body: { stream, line },
    });
    if (this.queue.length >= this.opts.batchLines) this.kick();
  }

  private kick(): void {
    if (this.inFlight || this.queue.length === 0) return;
    // Bounded by lines and by size, so that a batch stays well under the server's body limit.
    let n = 0;
    for (let chars = 0; n < this.queue.length && n < this.opts.batchLines && chars < BATCH_CHARS; n++) {
      chars += (this.queue[n].body as { line: string }).line.length + 100;
    }
    const batch = this.queue.splice(0, n);
    this.inFlight = this.send(batch).finally(() => {
      this.inFlight = null;
      for (const fn of this.listeners) fn();
      if (this.queue.length >= this.opts.batchLines) this.kick();
    });
  }

  private async send(batch: EventInput[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.run.events(batch);
        return;
      } catch (err) {
        const code = err instanceof LedgerError ? err.code : undefined;
        if (code === 'run_finished') {
          this.stop();
          this.opts.onRunFinished?.(err as LedgerError);
        }
        // One line the store refuses must not cost the others in its batch: halve until it is alone.
        if ((code === 'validation_failed' || code === 'payload_too_large') && batch.length > 1) {
          const half = Math.ceil(batch.length / 2);
          await this.send(batch.slice(0, half));
          await this.send(batch.slice(half));
          return;
        }
        if ((code && PERMANENT.has(code)) || attempt >= RETRIES) {
          this.dropped += batch.length;
          if (!this.warned && code !== 'run_finished') {
            this.warned = true;
            this.opts.onWarning?.(`could not store output lines as events (${(err as Error).message}); counting them as dropped`);
          }
          return;
        }
        await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
      }
    }
  }

  /** Stops shipping: further lines are counted as dropped. */
  private stop(): void {
    this.stopped = true;
    this.dropped += this.queue.length;
    this.queue.length = 0;
  }

  /** Ships everything queued and stops the timer. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.end('stdout');
    this.end('stderr');
    while (this.inFlight || this.queue.length) {
      if (this.inFlight) await this.inFlight;
      else this.kick();
    }
  }
}
