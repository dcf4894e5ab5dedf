import { existsSync } from "node:fs";

/**
 * Where Debian's Chromium lives. Here, below config and crawl, because the config resolves
 * `crawl.browser.executable_path`'s default and the browser pool launches it: the config must not
 * import the browser code to learn a path.
 */
export const DEFAULT_CHROMIUM_PATH = "/usr/bin/chromium";
/** Debian's headless shell: the same Chromium build without the browser UI. */
export const HEADLESS_SHELL_PATH = "/usr/lib/chromium/chromium-headless-shell";

/**
 * The browser used when the config names none: Debian's `chromium-headless-shell` when it is
 * installed — what Playwright itself runs headless, and about half the CPU per page of the full
 * browser here (bench/crawl-browser.ts) — else Debian's `chromium`.
 */
export function defaultChromiumPath(): string {
  return existsSync(HEADLESS_SHELL_PATH) ? HEADLESS_SHELL_PATH : DEFAULT_CHROMIUM_PATH;
}
