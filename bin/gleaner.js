#!/usr/bin/env node
// Gleaner's command line. Runs the TypeScript sources through tsx, so there is no build step
// to forget and no stale output to debug.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli/main.ts");
process.exitCode = await main(process.argv);
