/**
 * A page's HTML without what no reader sees, cut out before the DOM parse: executable scripts,
 * styles, comments and inline SVG drawings. Real pages are 100 KB–1.5 MB, most of it scripts and
 * styles; the parse, Readability and the Markdown walk all cost by the node, so shrinking first is the
 * cheapest speed-up of the fetch path. JSON-LD (`<script type="application/ld+json">`) stays:
 * structured data is read from it.
 *
 * Cutting with patterns is safe here because the HTML tokenizer ends these elements the same
 * way: a script or style ends at the first `</script` / `</style` whatever its content, a
 * comment at the first `-->`. An `<svg>` is cut only when it holds no other `<svg>`.
 */

// One pass, leftmost match first, as the tokenizer meets them: a `<!--` inside a script is
// script text, a `<script>` inside a comment is comment text.
const INVISIBLE =
  /<!--[\s\S]*?-->|<script\b([^>]*)>[\s\S]*?<\/script\s*>|<style\b[^>]*>[\s\S]*?<\/style\s*>|<svg\b[^>]*>(?:(?!<svg\b)[\s\S])*?<\/svg\s*>/gi;
const DATA_SCRIPT = /\btype\s*=\s*["']?application\/(ld\+json|json)\b/i;

export function compactHtml(html: string): string {
  return html.replace(INVISIBLE, (whole, scriptAttributes: string | undefined) =>
    scriptAttributes !== undefined && DATA_SCRIPT.test(scriptAttributes) ? whole : "",
  );
}
