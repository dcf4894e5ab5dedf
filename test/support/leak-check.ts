import pg from "pg";
import { afterAll } from "vitest";

/**
 * Fails a test file that leaves a pg pool open: a leaked pool is a leaked worker, listener or
 * transaction in real use. Every pool created while the file runs is recorded.
 */
const created: pg.Pool[] = [];
const OriginalPool = pg.Pool;
class TrackedPool extends OriginalPool {
  constructor(config?: pg.PoolConfig) {
    super(config);
    created.push(this);
  }
}
pg.Pool = TrackedPool;

afterAll(() => {
  const open = created.filter((p) => !p.ended);
  if (open.length > 0) {
    throw new Error(`${open.length} pg pool(s) left open by this test file: end them in afterAll`);
  }
});
