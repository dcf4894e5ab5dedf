// One process of the budget race (test/budget.budget-ledger.test.ts): makes paid calls through
// the budget, one after another, until the cap refuses one; prints what it did as JSON.
// Usage: node --import tsx test/support/budget-spender.ts <config.yaml text in GLEANER_YAML>
import { createBudgetGuard } from "../../src/budget/budget-guard.ts";
import { estimateCallUsd, withLlmBudget } from "../../src/budget/llm-budget.ts";
import { systemClock } from "../../src/core/clock.ts";
import { parseConfig } from "../../src/config/load-config.ts";
import { connectDatabase } from "../../src/db/connect-database.ts";
import { createLlmBackend } from "../../src/llm/llm-backend.ts";
import { LlmError } from "../../src/llm/llm-error.ts";
import type { LlmRequest } from "../../src/llm/llm-types.ts";

const config = parseConfig(process.env.GLEANER_YAML ?? "", { env: process.env });
const database = await connectDatabase(config, { poolSize: 2 });
const backendConfig = config.backends[0];
if (!backendConfig) throw new Error("the spender's config needs one backend");
const guard = createBudgetGuard(database.db, config, { clock: systemClock });
const backend = withLlmBudget(
  { backend: createLlmBackend(backendConfig), config: backendConfig },
  guard,
  "spend",
  systemClock,
);
const schema = {
  type: "object",
  properties: {
    rows: {
      type: "array",
      items: { type: "object", properties: { id: { type: "string" }, label: {} } },
    },
  },
};
let calls = 0;
let maxEstimateUsd = 0;
let refused = "";
for (let i = 0; ; i++) {
  const req: LlmRequest = {
    system: "You label things. Answer with JSON only.",
    // Prompts of different lengths, so estimates differ from call to call.
    prompt: `Label item ${process.pid}-${i}: ${"lorem ipsum dolor sit amet ".repeat(5 + (i % 7) * 4)}`,
    schema,
    schemaName: "label_answer",
    purpose: { stage: "label", rowKeys: [`${process.pid}-${i}`] },
  };
  maxEstimateUsd = Math.max(maxEstimateUsd, estimateCallUsd(backendConfig, req));
  try {
    await backend.complete(req);
    calls++;
  } catch (error) {
    if (error instanceof LlmError && error.errorClass === "budget_exhausted") {
      refused = error.message;
      break;
    }
    throw error;
  }
}
await database.close();
process.stdout.write(`${JSON.stringify({ calls, maxEstimateUsd, refused })}\n`);
