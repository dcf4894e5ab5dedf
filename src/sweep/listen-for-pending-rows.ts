import type pg from "pg";
import { coerceError } from "../core/coerce-error.ts";

/** Pauses between attempts to listen again after the connection was lost. */
const RECONNECT_DELAYS_MS = [100, 250, 500, 1000, 2000];

export interface PendingRowsListener {
  stop(): Promise<void>;
}

/**
 * Holds one connection that LISTENs on `gleaner_pending` (sent by the tables' triggers when new
 * rows are pending), so new rows start at once rather than at the next cron tick. When the
 * connection is lost (a database restart, a terminated backend, a network cut), the broken
 * client is destroyed — not returned to the pool — and a new one listens again with backoff;
 * once it listens, `onReconnect` runs, since notifications sent meanwhile were lost.
 */
export async function listenForPendingRows(
  pool: pg.Pool,
  options: {
    onNotify: (pipeline: string) => void;
    onReconnect: () => void;
    log: (message: string) => void;
  },
): Promise<PendingRowsListener> {
  let client: { pg: pg.PoolClient; detach: () => void } | undefined;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;

  const connect = async (): Promise<void> => {
    const next = await pool.connect();
    let lost = false;
    const detach = () => {
      lost = true;
      next.off("notification", onNotification);
      next.off("error", onLost);
      next.off("end", onEnd);
    };
    const onLost = (error: Error) => {
      if (lost) return;
      detach();
      // Destroyed, not reused: a client that lost its connection is no good to the pool.
      next.release(error);
      if (client?.pg === next) client = undefined;
      if (stopped) return;
      options.log(`listener connection lost: ${error.message}; listening again`);
      schedule(0);
    };
    const onNotification = (msg: pg.Notification) => {
      if (msg.channel === "gleaner_pending" && msg.payload) options.onNotify(msg.payload);
    };
    // A backend that ends cleanly (terminated by an administrator) may end without an error.
    const onEnd = () => onLost(new Error("connection ended"));
    next.on("error", onLost);
    next.on("end", onEnd);
    next.on("notification", onNotification);
    try {
      await next.query("listen gleaner_pending");
    } catch (error) {
      onLost(coerceError(error));
      throw error;
    }
    client = { pg: next, detach };
  };

  const schedule = (attempt: number) => {
    const delay = RECONNECT_DELAYS_MS[Math.min(attempt, RECONNECT_DELAYS_MS.length - 1)] ?? 2000;
    retry = setTimeout(() => {
      retry = undefined;
      if (stopped) return;
      connect().then(
        () => {
          options.log("listening for new rows again");
          options.onReconnect();
        },
        (error: unknown) => {
          if (attempt === 0 || attempt % 10 === 0)
            options.log(`cannot listen for new rows yet: ${coerceError(error).message}`);
          // connect()'s own loss handler already scheduled the next try when the client broke
          // after connecting; otherwise schedule it here.
          if (!retry && !stopped) schedule(attempt + 1);
        },
      );
    }, delay);
  };

  await connect();
  return {
    async stop() {
      stopped = true;
      if (retry) clearTimeout(retry);
      const current = client;
      client = undefined;
      if (!current) return;
      current.detach();
      try {
        await current.pg.query("unlisten gleaner_pending");
        current.pg.release();
      } catch (error) {
        // The connection broke as we stopped: destroy it rather than return it to the pool.
        current.pg.release(coerceError(error));
      }
    },
  };
}
