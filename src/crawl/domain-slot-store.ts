/**
 * What fleet-wide politeness (fleet-politeness.ts) asks of the database, one round trip per
 * call. The statements live in src/sql/crawl-domain-slots.ts (they take row locks); this is only
 * their shape, so the crawl layer does not import the layer above it. Durations are relative to
 * the database's clock, so processes whose clocks disagree still agree on the spacing.
 */

export interface TakeSlotRequest {
  /** The politeness key: registrable domain, or host:port for an address (politeness-key.ts). */
  domain: string;
  /** Unique per call: names the lease that give-back removes. */
  leaseId: string;
  /** Slots held at once fleet-wide (`per_host_concurrency`). */
  concurrency: number;
  /** Spacing between starts (`per_host_delay`). */
  delayMs: number;
  /** robots.txt Crawl-delay this process read, if any: spacing is the larger of the two. */
  crawlDelayMs: number | null;
  /** How long the slot stays held, counted from its start, if its process never gives it back. */
  leaseMs: number;
  /** Consecutive failures that open the circuit. */
  failureThreshold: number;
}

export interface TakeSlotAnswer {
  granted: boolean;
  /** Refused because the circuit is open (or its one trial call runs elsewhere). */
  circuitOpen: boolean;
  /** Granted as the one trial call through a half-open circuit. */
  trial: boolean;
  /** Granted: wait this long, then start. Refused for concurrency: when the next start could be. */
  waitMs: number;
  pausedForMs: number;
  openForMs: number;
  failures: number;
}

export interface GiveBackRequest {
  domain: string;
  /** The lease to remove; null only records an outcome or a pause. */
  leaseId: string | null;
  /** `failure` counts against the breaker, `success` resets it, `neutral` leaves it. */
  outcome: "success" | "failure" | "neutral";
  /** Leave the domain alone this long from now (Retry-After); 0 for no pause. */
  pauseMs: number;
  failureThreshold: number;
  coolDownMs: number;
}

export interface GiveBackAnswer {
  pausedForMs: number;
  openForMs: number;
  failures: number;
}

export interface DomainSlotStore {
  take(request: TakeSlotRequest): Promise<TakeSlotAnswer>;
  giveBack(request: GiveBackRequest): Promise<GiveBackAnswer>;
  /**
   * Deletes at most `limit` domains nobody has asked about for `idleMs` and that hold nothing
   * (no lease, pause, open circuit or failure count); returns how many went. A crawl of the
   * open web meets new domains forever: without this their rows would pile up.
   */
  prune(idleMs: number, limit: number): Promise<number>;
}
