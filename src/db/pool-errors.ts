/**
 * The listener for a pooled client's 'error' event. node-postgres emits it when the connection
 * breaks; without a listener the process would end. The error is not lost: for an idle client
 * the pool emits it again as its own 'error' (logged by whoever owns the pool), and for a
 * client in use the query in flight rejects with it.
 */
export function ignoreReportedElsewhere(_error: Error): void {
  // Reported elsewhere; see above.
}
