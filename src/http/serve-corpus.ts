import { createReadStream } from "node:fs";
import { realpath, stat } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import { extname, join, normalize, sep } from "node:path";
import type { ServedCorpus } from "../search/corpus-folders.ts";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".htm": "text/html; charset=utf-8",
  ".md": "text/markdown; charset=utf-8",
  ".markdown": "text/markdown; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
};

/**
 * Answers GET /corpus/<provider>/<path> from the provider's folder. Only files of the types the
 * corpus indexes are served, and never anything outside the folder (`..`, absolute paths).
 * Returns false when the path is not under /corpus/.
 */
export function serveCorpus(
  corpora: readonly ServedCorpus[],
  path: string,
  res: ServerResponse,
): boolean {
  const match = /^\/corpus\/([^/]+)\/(.*)$/.exec(path);
  if (!match) return false;
  const notFound = () => {
    res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
    res.end("not found\n");
  };
  let provider: string;
  try {
    provider = decodeURIComponent(match[1] as string);
  } catch {
    notFound();
    return true;
  }
  const corpus = corpora.find((c) => c.provider === provider);
  if (!corpus) {
    notFound();
    return true;
  }
  let relative: string;
  try {
    relative = decodeURIComponent(match[2] as string) || "index.html";
  } catch {
    notFound();
    return true;
  }
  if (relative.endsWith("/")) relative += "index.html";
  const root = normalize(corpus.folder + sep);
  const file = normalize(join(root, relative));
  const type = TYPES[extname(file).toLowerCase()];
  // Dot files are not indexed, so not served either (.env, .git…).
  const hidden = relative.split(/[/\\]/).some((segment) => segment.startsWith("."));
  if (!file.startsWith(root) || !type || hidden) {
    notFound();
    return true;
  }
  // A symlink could lead out of the folder: the real path must still be inside it.
  Promise.all([realpath(root), realpath(file)])
    .then(async ([realRoot, realFile]) => {
      if (!realFile.startsWith(realRoot + sep)) throw new Error("outside the corpus folder");
      return stat(realFile);
    })
    .then(
      (info) => {
        if (!info.isFile()) return notFound();
        res.writeHead(200, { "content-type": type, "content-length": info.size });
        createReadStream(file).pipe(res);
      },
      () => notFound(),
    );
  return true;
}
