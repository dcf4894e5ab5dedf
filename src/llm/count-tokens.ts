// Token counts as the model's own tokenizer sees them, for budgets, estimates and the extract
// stage's token_budget: characters / 4 is off by 2x on code, CJK text and URLs, and a budget
// that is off by 2x does not hold.
import { countTokens as countO200k } from "gpt-tokenizer/encoding/o200k_base";
import { countTokens as countCl100k } from "gpt-tokenizer/encoding/cl100k_base";

export type TokenizerName = "o200k_base" | "cl100k_base";

// gpt-4o, gpt-4.1, gpt-5 and the o-series (o1, o3, o4-mini...) use o200k_base.
const O200K = /^(gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|o\d)/i;

/**
 * The encoding for a model name. o200k_base for gpt-4o/4.1/5 and the o-series; cl100k_base for
 * gpt-3.5/gpt-4 and, as a stated fallback, for every model we do not know (Llama, Mistral, Qwen
 * tokenizers differ by some 10-20% from it, which estimate reports as "cl100k_base (fallback)").
 */
export function tokenizerFor(model: string): { name: TokenizerName; fallback: boolean } {
  const bare = model.replace(/^.*\//, "");
  if (O200K.test(bare)) return { name: "o200k_base", fallback: false };
  if (/^gpt-(3\.5|4)/i.test(bare)) return { name: "cl100k_base", fallback: false };
  return { name: "cl100k_base", fallback: true };
}

/** Tokens of `text` for `model` (see tokenizerFor). */
export function countTokens(text: string, model: string): number {
  if (text.length === 0) return 0;
  return tokenizerFor(model).name === "o200k_base" ? countO200k(text) : countCl100k(text);
}

/**
 * Tokens of a chat request: its messages plus the few tokens each message's framing costs
 * (OpenAI's cookbook: 3 per message and 3 to prime the answer).
 */
export function countChatTokens(system: string | undefined, prompt: string, model: string): number {
  const messages = system === undefined ? [prompt] : [system, prompt];
  return messages.reduce((sum, m) => sum + 3 + countTokens(m, model), 3);
}
