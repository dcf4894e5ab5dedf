/**
 * Turns a function of many items into a function of one item: the items asked for at the same
 * moment go to `batch` together, and each caller gets its own result (or the batch's error).
 *
 * Items asked for in the same turn of the event loop always share a batch. With `maxInFlight`
 * set, at most that many batches run at once and the items asked for meanwhile wait for the next
 * one (group commit): under load, N concurrent callers cost about one statement per database
 * round trip instead of N. A caller's promise settles only when its own batch did, so nothing is
 * acknowledged before it is written.
 */
export function groupCalls<T, R>(
  batch: (items: T[]) => Promise<R[]>,
  options: { maxInFlight?: number; maxItems?: number } = {},
): (item: T) => Promise<R> {
  const maxInFlight = options.maxInFlight ?? Number.POSITIVE_INFINITY;
  const maxItems = options.maxItems ?? Number.POSITIVE_INFINITY;
  let pending: { item: T; resolve: (r: R) => void; reject: (e: unknown) => void }[] = [];
  let inFlight = 0;
  let scheduled = false;

  const flush = () => {
    scheduled = false;
    while (pending.length > 0 && inFlight < maxInFlight) {
      const taken = pending.slice(0, maxItems);
      pending = pending.slice(taken.length);
      inFlight++;
      // The slot is freed before the callers hear back: the items that waited meanwhile are
      // on their way in the next batch before anyone can ask for more.
      const done = () => {
        inFlight--;
        schedule();
      };
      new Promise<R[]>((resolve) => resolve(batch(taken.map((p) => p.item)))).then(
        (results) => {
          done();
          taken.forEach((p, i) => p.resolve(results[i] as R));
        },
        (error: unknown) => {
          done();
          taken.forEach((p) => p.reject(error));
        },
      );
    }
  };
  const schedule = () => {
    if (scheduled || pending.length === 0 || inFlight >= maxInFlight) return;
    scheduled = true;
    setImmediate(flush);
  };
  return (item) =>
    new Promise<R>((resolve, reject) => {
      pending.push({ item, resolve, reject });
      schedule();
    });
}
