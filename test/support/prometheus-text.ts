/** Reads the samples of a Prometheus text exposition (what GET /metrics returns) for asserts. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parseSamples(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, raw] of (match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      labels[key as string] = (raw as string).replace(/\\(.)/g, (_, c: string) =>
        c === "n" ? "\n" : c,
      );
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  return samples;
}

/** Samples of one name whose labels include all of `labels`. */
export function select(
  samples: readonly Sample[],
  name: string,
  labels: Record<string, string> = {},
): Sample[] {
  return samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
}

/** The one sample matching name and labels; throws when there is none or more than one. */
export function value(
  samples: readonly Sample[],
  name: string,
  labels: Record<string, string> = {},
): number {
  const found = select(samples, name, labels);
  if (found.length !== 1)
    throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}, expected 1`);
  return (found[0] as Sample).value;
}

/** The sum of the samples matching name and labels (0 when none). */
export function sum(
  samples: readonly Sample[],
  name: string,
  labels: Record<string, string> = {},
): number {
  return select(samples, name, labels).reduce((total, s) => total + s.value, 0);
}
