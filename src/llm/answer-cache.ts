// The shared LLM answer cache in front of one backend: a question asked before, of the same
// model, is answered from <schema>.llm_cache instead of being paid for again. Retries,
// low-confidence re-checks, reprocessing and resets ask exactly the same question with the same
// evidence, so they cost nothing; a changed page, prompt, schema or model is another question.
import { coerceError } from "../core/coerce-error.ts";
import { canonicalOnce, contentHash } from "../core/content-hash.ts";
import { groupCalls } from "../core/group-calls.ts";
import type {
  CachedLlmAnswer,
  LlmAnswerStore,
  LlmBackend,
  LlmBackendConfig,
  LlmCompletion,
  LlmRequest,
} from "./llm-types.ts";

/** Bumped when what a key covers changes meaning, so old answers are never served for it. */
const KEY_REVISION = 1;
/** Expired answers are deleted at most this often per process, at most PRUNE_LIMIT at a time. */
const PRUNE_EVERY_MS = 10 * 60_000;
const PRUNE_LIMIT = 500;

export interface AnswerCacheOptions {
  /** How long an answer is served after it was written (llm.cache_ttl); must be > 0. */
  ttlMs: number;
  /** Each lookup: `hit` (served from the cache) or `miss` (the backend is asked). */
  onLookup?: (outcome: "hit" | "miss") => void;
  /**
   * The cache could not be read, written or pruned. The call goes on without it (a read that
   * fails is a miss, the answer is still returned), and this hook reports it.
   */
  onError: (error: Error) => void;
  /** Milliseconds since the epoch; for the prune interval only. */
  now?: () => number;
}

/**
 * The key of one question to one model: the model, where it is served (base URL without
 * credentials or query: a different server with the same model name is a different model, and
 * Azure names its deployment in the path), temperature and structured_output mode, the exact
 * system and user messages, the answer schema and its name. The backend's name is left out, so
 * renaming a backend keeps its answers; its key, timeout and limits do not change answers.
 */
export function answerCacheKey(config: LlmBackendConfig, req: LlmRequest): string {
  return contentHash({
    revision: KEY_REVISION,
    ...backendIdentity(config),
    system: req.system ?? null,
    prompt: req.prompt,
    schema_name: req.schemaName,
    // Built once per stage and hashed into every call's key: serialised once.
    schema: canonicalOnce(req.schema),
  });
}

/**
 * What makes a backend the model it is, for the answer cache and stage fingerprints: the model,
 * the server (base URL without credentials or query), temperature and structured_output mode.
 */
export function backendIdentity(config: LlmBackendConfig): Record<string, unknown> {
  return {
    model: config.model,
    endpoint: endpointOf(config.base_url),
    temperature: config.temperature ?? null,
    structured_output: config.structured_output,
  };
}

function endpointOf(baseUrl: string): string {
  try {
    const url = new URL(baseUrl);
    return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, "")}`;
  } catch {
    // The config checks base URLs; an unparsable one is still a stable, distinct string.
    return baseUrl;
  }
}

/**
 * `backend` with the answer cache in front. A hit takes no concurrency slot and is served even
 * while the backend asks to pause; it runs the request's own `validate` like a live answer, and
 * one that fails it is ignored. A live answer is stored only when the stage calls `remember()`,
 * after its own validation accepted it.
 */
export function withAnswerCache(
  backend: LlmBackend,
  config: LlmBackendConfig,
  store: LlmAnswerStore,
  options: AnswerCacheOptions,
): LlmBackend {
  if (!(options.ttlMs > 0)) throw new Error("the LLM answer cache needs a positive ttlMs");
  const now = options.now ?? Date.now;
  let lastPrune = Number.NEGATIVE_INFINITY;
  const report = (what: string, error: unknown) => {
    const cause = coerceError(error);
    options.onError(
      new Error(`LLM backend ${config.name}: ${what} the answer cache failed: ${cause.message}`, {
        cause,
      }),
    );
  };

  // The lookups and writes of calls made at the same moment (a job's chunks start together)
  // go to the database as one statement each.
  const reads = groupCalls<string, CachedLlmAnswer | undefined>(async (keys) => {
    const found = await store.getMany(keys, options.ttlMs);
    return keys.map((k) => found.get(k));
  });
  // Writes are not waited for by the caller's next step, so they wait for each other instead:
  // one statement at a time, carrying every answer that arrived meanwhile.
  const writes = groupCalls<{ key: string; answer: CachedLlmAnswer }, void>(
    async (entries) => {
      await store.putMany(entries);
      return entries.map(() => undefined);
    },
    { maxInFlight: 1, maxItems: 500 },
  );

  const lookup = async (key: string, req: LlmRequest): Promise<LlmCompletion | undefined> => {
    const started = performance.now();
    let found;
    try {
      found = await reads(key);
    } catch (error) {
      report("reading", error);
      return undefined;
    }
    if (!found) return undefined;
    let json: unknown;
    try {
      json = JSON.parse(found.answer) as unknown;
      req.validate?.(json);
    } catch (error) {
      // Only validated answers are written, so this is a hand edit or a stricter check since.
      report("using an answer from", error);
      return undefined;
    }
    return {
      json,
      inputTokens: 0,
      outputTokens: 0,
      costUsd: 0,
      durationMs: Math.round(performance.now() - started),
      model: found.model,
      cached: {
        inputTokens: found.inputTokens,
        outputTokens: found.outputTokens,
        costUsd: found.costUsd,
      },
    };
  };

  const prune = async (): Promise<void> => {
    if (now() - lastPrune < PRUNE_EVERY_MS) return;
    lastPrune = now();
    try {
      const deleted = await store.prune(options.ttlMs, PRUNE_LIMIT);
      // A full batch means more are waiting: the next write may prune again.
      if (deleted >= PRUNE_LIMIT) lastPrune = Number.NEGATIVE_INFINITY;
    } catch (error) {
      report("pruning", error);
    }
  };

  async function complete(req: LlmRequest): Promise<LlmCompletion> {
    const key = answerCacheKey(config, req);
    const hit = await lookup(key, req);
    options.onLookup?.(hit ? "hit" : "miss");
    if (hit) return hit;
    const live = await backend.complete(req);
    let remembered = false;
    return {
      ...live,
      remember: async () => {
        // Another backend answered (a budget downgrade): not this model's answer to keep.
        if (remembered || (live.backend !== undefined && live.backend !== backend.name)) return;
        remembered = true;
        try {
          await writes({
            key,
            answer: {
              backend: config.name,
              model: live.model,
              answer: JSON.stringify(live.json),
              inputTokens: live.inputTokens,
              outputTokens: live.outputTokens,
              costUsd: live.costUsd,
            },
          });
        } catch (error) {
          report("writing", error);
          return;
        }
        await prune();
      },
    };
  }

  return {
    name: backend.name,
    model: backend.model,
    complete,
    inFlight: () => backend.inFlight(),
  };
}
