// End-to-end tests of the web console in headless Chromium, against a running local
// cluster that crawls the fixture site of fixture.mjs. scripts/browser-test.sh starts
// both and sets:
//   CONSOLE_URL     the admin address, e.g. http://127.0.0.1:8200
//   FIXTURE_URL     the fixture site's address, e.g. http://127.0.0.1:8311/
//   ADMIN_TOKEN     the token the admin process was started with
//   SCREENSHOT_DIR  where to save a screenshot of each page (default target/browser-screenshots)
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

import { EXPECTED_FETCHED } from "./fixture.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const CONSOLE_URL = requireEnv("CONSOLE_URL").replace(/\/$/, "");
const FIXTURE_URL = requireEnv("FIXTURE_URL").replace(/\/?$/, "/");
const ADMIN_TOKEN = requireEnv("ADMIN_TOKEN");
const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR || resolve(HERE, "../../target/browser-screenshots");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

/** Maximum wait for the fixture crawl to reach done. */
const CRAWL_TIMEOUT_MS = 120_000;
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };

function requireEnv(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; run the tests through scripts/browser-test.sh`);
  return value;
}

let userDataDir;
let context;
let page;
/** The console path of the fixture site, set once the site is added. */
let sitePath;

async function screenshot(name) {
  await page.screenshot({ path: join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
}

describe("web console", () => {
  before(async () => {
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    userDataDir = mkdtempSync(join(tmpdir(), "open-ahrefs-chromium-"));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      viewport: DESKTOP,
      locale: "en-US",
      acceptDownloads: true,
    });
    page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(15_000);
  });

  after(async () => {
    await context?.close();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  });

  it("asks for the admin token and rejects a wrong one", async () => {
    const response = await page.goto(`${CONSOLE_URL}/`);
    assert.equal(response.status(), 200);
    assert.match(page.url(), /\/console\/login\?next=%2Fconsole%2F$/);
    await screenshot("01-login");

    await page.getByLabel("Admin token").fill("not the token");
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByRole("alert").waitFor();
    assert.match(await page.getByRole("alert").innerText(), /token is wrong/);

    await page.getByLabel("Admin token").fill(ADMIN_TOKEN);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByRole("heading", { level: 1, name: "Sites" }).waitFor();

    const cookies = await context.cookies(CONSOLE_URL + "/console/");
    const session = cookies.find((cookie) => cookie.name === "open_ahrefs_session");
    assert.ok(session, "session cookie is set");
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, "Strict");
    assert.equal(session.path, "/console");
  });

  it("adds the fixture site and follows its crawl to done", async () => {
    await page.getByLabel("Start URL").fill(`${FIXTURE_URL}index.html`);
    await page.getByRole("button", { name: "Add and crawl" }).click();
    await page.getByRole("status").filter({ hasText: "Site added" }).waitFor();
    sitePath = new URL(page.url()).pathname;
    assert.match(sitePath, /^\/console\/sites\/\d+$/);
    await screenshot("02-site-crawling");

    const state = page.locator('[data-field="state"]');
    await state.filter({ hasText: /^done$/ }).waitFor({ timeout: CRAWL_TIMEOUT_MS });
    // The script updates the counts on the next poll after done, a second later at most.
    await page.waitForFunction(
      (expected) => document.querySelector('[data-field="urls_fetched"]').textContent === String(expected),
      EXPECTED_FETCHED,
      { timeout: 5_000 },
    );
    assert.equal(await page.locator('[data-field="frontier"]').innerText(), "0");
    assert.equal(await page.locator('[data-field="responses.4xx"]').innerText(), "1");
    assert.equal(await page.locator('[data-field="responses.2xx"]').innerText(), String(EXPECTED_FETCHED - 1));
    assert.notEqual(await page.locator('[data-field="rate"]').innerText(), "—", "the rate is computed");
    assert.match(await page.locator('[data-field="updated"]').innerText(), /^updated /);
    await screenshot("03-site-done");
  });

  it("lists the pages, filters them by status and searches URLs", async () => {
    await page.getByRole("link", { name: "Pages", exact: true }).first().click();
    await page.getByRole("heading", { level: 1, name: "Pages" }).waitFor();
    const rows = page.locator("table.data tbody tr");
    // The list, like the API's /api/v1/pages, also contains the fetched /sitemap.xml,
    // which the progress counts leave out.
    const pageRows = rows.filter({ hasNotText: "sitemap.xml" });
    assert.equal(await pageRows.count(), EXPECTED_FETCHED);
    await screenshot("04-pages");

    await page.getByLabel("Status").selectOption("4xx");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL(/status=4xx/);
    assert.equal(await pageRows.count(), 1);
    assert.match(await pageRows.first().innerText(), /missing\.html/);
    for (const text of await rows.allInnerTexts()) assert.match(text, /\t4\d\d\t/, "only 4xx rows");

    await page.getByLabel("Status").selectOption("");
    await page.getByLabel("URL contains").fill("ABOUT");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL(/q=ABOUT/);
    assert.equal(await rows.count(), 1, "the search ignores case");
    assert.match(await rows.first().innerText(), /about\.html/);
  });

  it("sorts a table from the keyboard", async () => {
    await page.getByRole("link", { name: "Clear filters" }).click();
    const sortByStatus = page.locator("table.data thead th").nth(1).getByRole("button");
    await sortByStatus.focus();
    await page.keyboard.press("Enter");
    await page.keyboard.press("Enter");
    assert.equal(await page.locator("table.data thead th").nth(1).getAttribute("aria-sort"), "descending");
    const statuses = await page.locator("table.data tbody tr").evaluateAll((rows) =>
      rows.map((row) => Number(row.cells[1].dataset.sort)),
    );
    assert.deepEqual(statuses, [...statuses].sort((a, b) => b - a), "rows are in descending status order");
    assert.ok(statuses.includes(404));
  });

  it("opens a page with its facts and inlinks", async () => {
    await page.getByLabel("URL contains").fill("about.html");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL(/q=about/);
    await page.locator("table.data tbody tr").first().getByRole("link").click();
    await page.getByRole("heading", { level: 1, name: "Page" }).waitFor();

    const facts = page.locator("dl.facts").first();
    assert.match(await facts.innerText(), /About the fixture/);
    const inlinks = page.locator('section[aria-labelledby="inlinks-heading"]');
    const inlinkText = await inlinks.innerText();
    assert.match(inlinkText, /index\.html/);
    assert.match(inlinkText, /About us/);
    assert.match(inlinkText, /О нас/, "Cyrillic anchors come through");
    const outlinks = await page.locator('section[aria-labelledby="outlinks-heading"]').innerText();
    assert.match(outlinks, /hidden\.html/);
    await screenshot("05-page-inlinks");

    await inlinks.getByRole("link", { name: /index\.html/ }).first().click();
    await page.getByRole("heading", { level: 1, name: "Page" }).waitFor();
    assert.match(await page.locator("dl.facts").first().innerText(), /Fixture home/);
  });

  it("shows backlinks, referring domains and anchors of a target", async () => {
    await page.getByRole("link", { name: "All backlinks of this URL" }).click();
    await page.getByRole("heading", { level: 1, name: "Backlinks" }).waitFor();
    assert.match(await page.locator(".summary").innerText(), /referring domains: 1\./);
    await screenshot("06-backlinks");

    await page.getByRole("link", { name: "Anchors" }).click();
    await page.getByRole("heading", { level: 2, name: "Anchors" }).waitFor();
    // The previous test ended on the home page, which about.html and ru.html link to.
    const anchors = await page.locator("table.data").innerText();
    assert.match(anchors, /Home/);
    assert.match(anchors, /Главная/);

    await page.getByLabel("Target").fill(new URL(FIXTURE_URL).host);
    await page.getByLabel("Match").selectOption("host");
    await page.getByRole("button", { name: "Show" }).click();
    await page.getByRole("link", { name: "Referring domains" }).click();
    await page.getByRole("heading", { level: 2, name: "Referring domains" }).waitFor();
    assert.match(await page.locator("table.data").innerText(), /127\.0\.0\.1/);
  });

  it("opens the audit with each finding's examples", async () => {
    await page.goto(`${CONSOLE_URL}${sitePath}/audit`);
    await page.getByRole("heading", { level: 1, name: "Site audit" }).waitFor();
    const table = page.locator("table.data");
    assert.match(await table.innerText(), /Pages answering 4xx/);
    assert.match(await table.innerText(), /Title missing/);
    assert.match(await table.innerText(), /Title shared by several pages/);

    const finding = page.locator("#finding-http_4xx");
    await finding.locator("summary").click();
    assert.match(await finding.locator(".examples").innerText(), /missing\.html/);
    await screenshot("07-audit");
  });

  it("switches to Russian and keeps it across pages", async () => {
    await page.getByRole("link", { name: "Русский" }).click();
    await page.waitForURL(/lang=ru/);
    assert.equal(await page.locator("html").getAttribute("lang"), "ru");
    await page.getByRole("heading", { level: 1, name: "Аудит сайта" }).waitFor();
    assert.match(await page.locator("table.data").innerText(), /Страницы с ответом 4xx/);
    await screenshot("08-audit-ru");

    await page.getByRole("link", { name: "Сайты" }).first().click();
    await page.getByRole("heading", { level: 1, name: "Сайты" }).waitFor();
    assert.equal(await page.locator("html").getAttribute("lang"), "ru", "the lang cookie keeps the choice");
    await screenshot("09-sites-ru");

    await page.getByRole("link", { name: "English" }).click();
    await page.getByRole("heading", { level: 1, name: "Sites" }).waitFor();
  });

  it("picks Russian from Accept-Language", async () => {
    // The context's locale fixes the browser's own Accept-Language, so this request goes
    // through the context's request client, which sends the session cookie as it is.
    await context.clearCookies({ name: "lang" });
    const response = await context.request.get(`${CONSOLE_URL}/console/`, {
      headers: { "Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5" },
    });
    assert.equal(response.status(), 200);
    assert.match(await response.text(), /<html lang="ru">/);
  });

  it("exports the pages as CSV", async () => {
    await page.goto(`${CONSOLE_URL}${sitePath}`);
    const pagesExport = page.locator(".export-list li").filter({ hasText: "Pages" });
    const href = await pagesExport.getByRole("link", { name: "CSV" }).getAttribute("href");
    const response = await page.request.get(`${CONSOLE_URL}${href}`);
    assert.equal(response.status(), 200, `GET ${href} returned ${response.status()}: ${await response.text()}`);

    const [download] = await Promise.all([
      page.waitForEvent("download"),
      pagesExport.getByRole("link", { name: "CSV" }).click(),
    ]);
    assert.equal(await download.failure(), null);
    const csv = readFileSync(await download.path(), "utf8");
    const lines = csv.trim().split(/\r?\n/);
    assert.match(lines[0], /url/, "the first line is the header");
    assert.equal(lines.length, EXPECTED_FETCHED + 1, "one line per fetched page after the header");
    assert.ok(csv.includes("missing.html"));
  });

  it("rejects a form with a forged CSRF token", async () => {
    await page.goto(`${CONSOLE_URL}${sitePath}`);
    await page.locator('form[action$="/recrawl"] input[name="csrf"]').evaluate((input) => {
      input.value = "0".repeat(64);
    });
    await page.getByRole("button", { name: "Recrawl" }).click();
    await page.getByRole("heading", { level: 1, name: /Something went wrong/ }).waitFor();
    assert.match(await page.getByRole("alert").innerText(), /form has expired/);
  });

  it("recrawls the site with its real CSRF token", async () => {
    await page.goto(`${CONSOLE_URL}${sitePath}`);
    await page.getByRole("button", { name: "Recrawl" }).click();
    await page.getByRole("status").filter({ hasText: /URLs queued for a new crawl: \d+/ }).waitFor();
  });

  it("fits a phone screen", async () => {
    await page.setViewportSize(PHONE);
    for (const [path, name] of [
      ["/console/", "10-phone-sites"],
      [sitePath, "11-phone-site"],
      [`${sitePath}/pages`, "12-phone-pages"],
    ]) {
      await page.goto(`${CONSOLE_URL}${path}`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${path} is ${overflow}px wider than the phone screen`);
      await screenshot(name);
    }
    await page.setViewportSize(DESKTOP);
  });

  it("reaches the skip link first from the keyboard", async () => {
    await page.goto(`${CONSOLE_URL}/console/`);
    await page.keyboard.press("Tab");
    const focused = await page.evaluate(() => document.activeElement.className);
    assert.equal(focused, "skip-link");
  });

  it("logs out and asks for the token again", async () => {
    await page.goto(`${CONSOLE_URL}/console/`);
    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByRole("heading", { level: 1, name: "Log in" }).waitFor();
    await page.goto(`${CONSOLE_URL}${sitePath}`);
    assert.match(page.url(), /\/console\/login\?next=/);
  });
});
