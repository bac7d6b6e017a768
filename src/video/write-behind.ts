/**
 * Writes to a stream up to `depth` chunks behind its producer. A raw frame (691 kB at
 * 640x360) is ten times a pipe's buffer, so waiting for each write to drain means waiting
 * until ffmpeg has read the frame, which it does only between its own encoding work: the
 * network would sit idle for that. Here write() returns as soon as the chunk is queued,
 * and waits only while `depth` chunks are still unflushed, which bounds the memory.
 */
import type { Writable } from 'node:stream';

export class WriteBehind {
  /** One promise per chunk not yet handed to the OS, oldest first; each settles when its chunk is flushed or failed. */
  private readonly unflushed: { done: Promise<void>; settle: () => void }[] = [];
  private error: Error | undefined;

  constructor(private readonly stream: Writable, readonly depth: number) {
    if (!Number.isInteger(depth) || depth < 1) throw new RangeError(`write-behind depth must be a positive integer, got ${depth}`);
    // a stream closed under a write (ffmpeg killed, EPIPE) need not call back every chunk: nobody may wait forever
    stream.once('close', () => {
      for (const u of this.unflushed) u.settle();
    });
  }

  /** Queues `chunk`; resolves once at most `depth` chunks are unflushed; rejects with the first write error. */
  async write(chunk: Uint8Array): Promise<void> {
    if (this.error) throw this.error;
    if (this.stream.destroyed || this.stream.writableEnded) throw (this.error = new Error('write after the stream was closed'));
    // the callback runs once the chunk is written, or with the error that stopped it
    let settle!: () => void;
    const done = new Promise<void>((resolve) => (settle = resolve));
    this.unflushed.push({ done, settle });
    this.stream.write(chunk, (err) => {
      if (err) this.error ??= err;
      settle();
    });
    await this.settle(this.depth);
    if (this.error) throw this.error;
  }

  /** Waits for the oldest chunks until at most `left` are unflushed; each stays listed until settled, so that a close can settle it. */
  private async settle(left: number): Promise<void> {
    while (this.unflushed.length > left) {
      const oldest = this.unflushed[0];
      await oldest.done;
      // a concurrent write() may have removed it already
      if (this.unflushed[0] === oldest) this.unflushed.shift();
    }
  }

  /** Waits until every queued chunk is flushed; rejects with the first write error. */
  async flush(): Promise<void> {
    await this.settle(0);
    if (this.error) throw this.error;
  }
}
