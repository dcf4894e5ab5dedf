import { type Handler, reply, rowIdsInPrompt, rowSection } from "./fake-llm-server.ts";

/**
 * An extract-stage LLM that really reads the page text it is given, so what it fills depends on
 * which pages reached the prompt: for each row it looks, in the row's own sources, for the row's
 * exact name followed by a labelled number ("Acme Rocketry — employees: 412", any of `labels`),
 * and answers that number for `column`, citing the source; null otherwise. A near-namesake's
 * line ("Acme Rocketry Partners — …") is not the row's, as a careful model would judge.
 */
export function extractingFakeLlm(options: {
  column: string;
  labels: readonly string[];
  /** The input holding the row's name. */
  nameInput: string;
}): Handler {
  const labels = options.labels.map(escape).join("|");
  return (req) => {
    const sources = new Map<string, string>();
    const part = req.prompt.split("\n## Sources\n")[1]?.split("\n## Items\n")[0] ?? "";
    for (const chunk of part.split(/\n(?=\[S\d+\] )/)) {
      const id = /^\s*\[(S\d+)\]/.exec(chunk)?.[1];
      if (id) sources.set(id, chunk);
    }
    const rows = rowIdsInPrompt(req.prompt).map((id) => {
      const section = rowSection(req.prompt, id);
      const name = new RegExp(`^${options.nameInput}: (.*)$`, "m").exec(section)?.[1]?.trim() ?? "";
      const cited = (/^sources: (.*)$/m.exec(section)?.[1] ?? "").split(/,\s*/);
      const pattern = new RegExp(`${escape(name)}\\s*[—:-]+\\s*(?:${labels})\\s*:\\s*(\\d+)`, "i");
      for (const source of cited) {
        const found = name === "" ? null : pattern.exec(sources.get(source) ?? "");
        if (found)
          return {
            id,
            [options.column]: { value: Number(found[1]), confidence: 0.9, sources: [source] },
          };
      }
      return { id, [options.column]: { value: null, confidence: 0, sources: [] } };
    });
    return reply.json({ rows });
  };
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
