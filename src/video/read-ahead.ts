/**
 * Runs an async source up to `depth` items ahead of its consumer: while a frame is being
 * stylised the next ones are already decoded, yet never more than `depth` wait in memory.
 */
export async function* readAhead<T>(source: AsyncIterator<T> | AsyncIterable<T>, depth: number): AsyncGenerator<T> {
  if (!Number.isInteger(depth) || depth < 1) throw new RangeError(`read-ahead depth must be a positive integer, got ${depth}`);
  const it: AsyncIterator<T> = Symbol.asyncIterator in source ? (source as AsyncIterable<T>)[Symbol.asyncIterator]() : (source as AsyncIterator<T>);
  const pending: Promise<IteratorResult<T>>[] = [];
  let ended = false;
  // the source is pulled one call at a time (generators queue concurrent next() calls
  // anyway); each pull starts when the previous one settled
  let chain: Promise<unknown> = Promise.resolve();
  const pull = () => {
    const p = chain.then(() => it.next());
    chain = p.catch(() => {});
    // a rejection waiting in the queue is not unhandled: the consumer will await it
    p.catch(() => {});
    pending.push(p);
  };
  let finished = false;
  try {
    while (!ended) {
      while (pending.length < depth) pull();
      const r = await pending.shift()!;
      if (r.done) { ended = true; break; }
      yield r.value;
    }
    finished = true;
  } finally {
    if (!finished) {
      // let the pulls in flight settle before closing the source (a generator cannot return while running)
      await Promise.allSettled(pending);
      await it.return?.();
    }
  }
}
