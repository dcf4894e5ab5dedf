/**
 * Shares one read between the collectors of a scrape. prom-client starts every metric's
 * collect() in the same tick, so the first one starts the read and the others join it; the read
 * is forgotten once it settles, and the next scrape reads afresh. Several gauges can then be
 * filled from one set of queries instead of each repeating them.
 */
export function perScrape<T>(read: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    pending ??= read().finally(() => {
      pending = undefined;
    });
    return pending;
  };
}
