// `COPY … FROM STDIN` through the `pg` client's own protocol hooks, without pg-copy-streams: a
// query object the client submits like any other (`client.query(copy)`), which answers the
// server's CopyInResponse by sending the source's chunks as CopyData messages, waiting for the
// socket to drain between them so memory stays constant whatever the file's size.
import type { Socket } from "node:net";
import type { Connection, Submittable } from "pg";
import { coerceError } from "../core/coerce-error.ts";

/** What the `pg` client's connection offers for COPY (present since pg 8, not in its types). */
interface CopyConnection {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
  sendCopyFail(message: string): void;
  stream: Socket;
}

export interface CopyFromStdin extends Submittable {
  /** Resolves with the rows COPY inserted, or rejects with the server's error. */
  readonly done: Promise<number>;
}

/**
 * A `COPY … FROM STDIN` statement fed from `source`. One statement: all of it is inserted, or
 * nothing (a bad value anywhere rolls the whole COPY back). A source that throws cancels the COPY
 * (CopyFail) and the promise rejects with that error.
 */
export function copyFromStdin(text: string, source: AsyncIterable<Buffer>): CopyFromStdin {
  let resolve!: (rows: number) => void;
  let reject!: (error: Error) => void;
  const done = new Promise<number>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  let rows = 0;
  let failed: Error | undefined;
  let sourceError: Error | undefined;

  async function pump(connection: CopyConnection): Promise<void> {
    try {
      for await (const chunk of source) {
        // The server reported an error: it drops whatever else is sent, so stop reading.
        if (failed) return;
        connection.sendCopyFromChunk(chunk);
        // Backpressure: wait until the socket took what it holds (or closed: the client then
        // fails the query, and `failed` stops the loop).
        if (connection.stream.writableNeedDrain)
          await new Promise<void>((resolve) => {
            const go = () => {
              connection.stream.off("drain", go).off("close", go);
              resolve();
            };
            connection.stream.once("drain", go).once("close", go);
          });
      }
      if (!failed) connection.endCopyFrom();
    } catch (error) {
      sourceError = coerceError(error);
      if (!failed) connection.sendCopyFail(sourceError.message.slice(0, 200));
    }
  }

  return {
    done,
    submit(connection: Connection) {
      (connection as unknown as CopyConnection).query(text);
    },
    handleCopyInResponse(connection: Connection) {
      void pump(connection as unknown as CopyConnection);
    },
    handleCommandComplete(message: { text?: string }) {
      rows = Number(/^COPY (\d+)/.exec(message.text ?? "")?.[1] ?? 0);
    },
    // After an error the client forgets this query; the server's ReadyForQuery follows unseen.
    handleError(error: Error) {
      failed = error;
      reject(sourceError ?? error);
    },
    handleReadyForQuery() {
      if (!failed) resolve(rows);
    },
  } as unknown as CopyFromStdin;
}
