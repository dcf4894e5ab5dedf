import { connectDatabase } from "../../db/connect-database.ts";
import { migrate } from "../../db/migrate.ts";
import { loadCliConfig } from "../load-cli-config.ts";

export async function migrateCommand(options: { config: string }): Promise<number> {
  const config = loadCliConfig(options.config);
  const database = await connectDatabase(config, { log: (l) => console.error(l) });
  try {
    console.log(`using ${database.description}`);
    const report = await migrate(database, config);
    console.log(
      report.applied.length > 0
        ? `applied ${report.applied.join(", ")}`
        : "Gleaner schema is up to date",
    );
    for (const p of report.pipelines)
      console.log(
        `pipeline ${p.name}: table ${p.table} ${p.outcome}${p.seeded ? `, ${p.seeded} rows loaded from its seed` : ""}`,
      );
    for (const c of report.corpora)
      console.log(
        `search provider ${c.provider}: ${c.documents} documents indexed (${c.changed} changed)`,
      );
    return 0;
  } finally {
    await database.close();
  }
}
