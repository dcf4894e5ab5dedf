import { z } from "zod";

/** The rungs of the escalation ladder, in the order a row climbs them by default. */
export const RUNGS = ["render", "deeper", "search_more", "stronger_model"] as const;
export type RungName = (typeof RUNGS)[number];

/**
 * pipelines.<p>.escalate: what a research pipeline does for a row whose outputs are still NULL
 * or below min_confidence after its stages (src/stages/rungs/). `false` turns the ladder off;
 * unset, research pipelines get a default ladder (src/config/resolve-escalation.ts).
 */
const ladderBlock = z.strictObject({
  /** Climbed in this order; each runs only for rows that still have gaps. */
  rungs: z
    .array(z.enum(RUNGS, { message: `must be one of ${RUNGS.join(", ")}` }))
    .min(1, "name at least one rung, or write escalate: false")
    .optional(),
  /** Paid LLM calls the rungs may make for one row over all its attempts. */
  max_escalation_calls: z.number().int().min(1).max(100).default(4),
  /** search_more: query rounds, each aimed at the columns the last one left missing. */
  max_rounds: z.number().int().min(1).max(5).default(1),
  /** Pages one rung reads for one row (render, deeper, search_more). */
  max_pages: z.number().int().min(1).max(50).default(4),
  /** stronger_model: the backends that re-extract the gap columns, tried in order. */
  escalation_backends: z.array(z.string().min(1)).default([]),
  /** search_more: query templates; {{column}} is the gap column's name in words. */
  queries: z.array(z.string().min(1)).min(1).optional(),
});

export const escalationSchema = z.unknown().transform((value, ctx) => {
  if (value === false) return false as const;
  // Checked as a block, so a mistake inside it is reported at its own key (not as "invalid").
  const parsed = ladderBlock.safeParse(value);
  if (parsed.success) return parsed.data;
  for (const issue of parsed.error.issues)
    ctx.addIssue({
      code: "custom",
      message:
        value === true || value === null || typeof value !== "object"
          ? "write false to turn the ladder off, or a block such as { rungs: [render, deeper] }"
          : issue.message,
      path: issue.path,
    });
  return z.NEVER;
});

export type RawEscalation = z.output<typeof escalationSchema>;

/** The stage record a rung keeps in `enrichment_state.stages`, checkpointed like any stage. */
export function rungStageName(rung: RungName): string {
  return `rung:${rung}`;
}
