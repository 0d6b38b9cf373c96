// Writes the small site that the browser tests crawl: seven pages with a broken link, a
// page without a title, a duplicate title, a noindex page and Russian text.
//
//   node fixture.mjs DIR    writes the pages into DIR
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** The pages of the site by path, and what the tests expect of the crawl. */
export const PAGES = {
  "index.html": page("Fixture home", "Welcome", "The home page of the fixture site.", [
    ["about.html", "About us"],
    ["blog/post-1.html", "First post"],
    ["missing.html", "Broken link"],
    ["notitle.html", "Page without a title"],
    ["ru.html", "По-русски"],
  ]),
  "about.html": page("About the fixture", "About", "Who made this fixture.", [
    ["index.html", "Home"],
    ["blog/post-1.html", "Read the first post"],
    ["hidden.html", "Hidden page"],
  ]),
  "blog/post-1.html": page("Fixture home", "First post", "", [
    ["../about.html", "About us"],
    ["../index.html", "Home"],
  ]),
  "notitle.html": `<!doctype html><html><head><meta charset="utf-8"></head>
<body><p>No title and no heading.</p><a href="index.html">Home</a></body></html>`,
  "ru.html": page("Страница на русском", "Привет", "Описание страницы.", [
    ["about.html", "О нас"],
    ["index.html", "Главная"],
  ]),
  "hidden.html": `<!doctype html><html><head><meta charset="utf-8"><title>Hidden page of the fixture</title>
<meta name="robots" content="noindex"></head><body><h1>Hidden</h1><a href="about.html">About us</a></body></html>`,
};

/** Page URLs the crawl fetches: every page above and the broken link's target. */
export const EXPECTED_FETCHED = Object.keys(PAGES).length + 1;

function page(title, heading, description, links) {
  const anchors = links.map(([href, text]) => `<li><a href="${href}">${text}</a></li>`).join("\n");
  const meta = description ? `<meta name="description" content="${description}">` : "";
  return `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title>${meta}</head>
<body><h1>${heading}</h1><ul>${anchors}</ul></body></html>`;
}

export function writeFixture(directory) {
  for (const [path, html] of Object.entries(PAGES)) {
    const file = join(directory, path);
    mkdirSync(join(file, ".."), { recursive: true });
    writeFileSync(file, html);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (!process.argv[2]) {
    console.error("usage: node fixture.mjs DIR");
    process.exit(2);
  }
  writeFixture(process.argv[2]);
}
