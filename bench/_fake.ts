import { startFakeLlmProcess } from "./support/fake-llm-process.ts";
const llm = await startFakeLlmProcess(50);
console.log(llm.url);
setInterval(() => {}, 1 << 30);
