// The status page in a real headless Chromium (Debian's), driven by playwright-core.
//
//   node tests/browser/status_page.mjs URL OUTDIR
//
// URL is the status page of a demo group's Backup (`understudy demo`: main-1 + backup-1, token
// demo-token, backup-1 already replicated). The script checks, as an operator would do it:
//   1. both rows are shown, not yellow, the group is redundant, the commands are enabled;
//   2. Manual Take-Over: select main-1 in backup-1's drop-down, click Go, give the token at the
//      prompt -> both rows turn yellow (computed background) and the NO REDUNDANCY banner shows;
//   3. a second takeover is refused and the page lists the failed preconditions;
//   4. a wrong token is refused (401) and forgotten; Reverse takeover with the right token
//      -> the rows are no longer yellow and the group is redundant again;
//   4b. a takeover made through the API shows up by itself (auto-refresh) and a half-typed
//      reason is kept;
//   5. without JavaScript the page still shows both rows (reading only);
//   6. the page never requested anything from another origin.
// Screenshots go to OUTDIR: status-page-before.png, status-page-after-takeover.png,
// status-page-refused.png, status-page-after-reverse.png, status-page-no-js.png.
// Exit status 0 when every check passed, 1 otherwise (with the reason on stderr).

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [url, outDir] = process.argv.slice(2);
if (!url || !outDir) {
  console.error("usage: node status_page.mjs URL OUTDIR");
  process.exit(64);
}
const CHROMIUM = process.env.UNDERSTUDY_CHROMIUM || "/usr/bin/chromium";
const TOKEN = process.env.UNDERSTUDY_TOKEN || "demo-token";
const WAIT_MS = 20000;
mkdirSync(outDir, { recursive: true });

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  console.log(`ok: ${what}`);
}

// Are the rows of `names` all yellow (or all not yellow), by their computed background (the
// seed's "the color of the row is yellow")? Runs in the page.
function rowsAre({ names, yellow }) {
  return names.every((n) => {
    const tr = document.querySelector(`tr[data-member="${n}"]`);
    if (!tr) return false;
    const m = getComputedStyle(tr).backgroundColor.match(/\d+(\.\d+)?/g);
    const [r, g, b, a] = (m || []).map(Number);
    const isYellow = r >= 230 && g >= 200 && b <= 140 && (a === undefined || a > 0.5);
    return isYellow === yellow;
  });
}
const BOTH = ["main-1", "backup-1"];

/** Whether the row of `member` on `page` shows `text`. */
async function rowShows(page, member, text) {
  return (await page.locator(`tr[data-member="${member}"]`).innerText()).includes(text);
}

async function shot(page, name) {
  const path = join(outDir, name);
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot: ${path}`);
}

const origin = new URL(url).origin;
const foreign = [];
const pageErrors = [];
// Playwright gives the browser a fresh temporary --user-data-dir of its own and adds
// --no-sandbox (chromiumSandbox: false); the other flags keep Chromium off the network.
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  chromiumSandbox: false,
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
});
let failed = false;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.on("request", (r) => {
    if (!r.url().startsWith(origin) && !r.url().startsWith("data:")) foreign.push(r.url());
  });
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("console", (m) => {
    // HTTP errors the page handles itself (409, 401; /favicon.ico 404) are logged as
    // "Failed to load resource": not script errors.
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) {
      pageErrors.push(m.text());
    }
  });

  // 1. The page as the operator first sees it.
  await page.goto(url);
  await page.waitForSelector('tr[data-member="main-1"]');
  await page.waitForSelector('tr[data-member="backup-1"]');
  check((await page.locator("tr[data-member]").count()) === 2, "two member rows");
  check(await rowShows(page, "main-1", "Online"), "main-1 is Online");
  check(await rowShows(page, "backup-1", "Standby"), "backup-1 is Standby");
  check(
    await page.evaluate(rowsAre, { names: BOTH, yellow: false }),
    "no row is yellow before the takeover"
  );
  check(await page.locator("#redundancy.redundant").isVisible(), "the group is redundant");
  check(await page.locator("#extra-ip").isVisible(), "the Extra IP address is shown");
  check(await page.locator("#commands").isVisible(), "the script enabled the commands");
  const select = page.locator('select[data-backup="backup-1"]');
  await page.waitForFunction(
    () => !document.querySelector('select[data-backup="backup-1"]').disabled
  );
  const options = await select.locator("option").allInnerTexts();
  check(options.some((o) => o.startsWith("main-1")), "backup-1's drop-down lists main-1");
  await shot(page, "status-page-before.png");

  // 2. Manual Take-Over: drop-down, Go, token at the prompt.
  let prompted = 0;
  page.on("dialog", async (d) => {
    prompted += 1;
    if (d.type() === "prompt") await d.accept(TOKEN);
    else await d.dismiss();
  });
  await select.selectOption("main-1");
  await page.click('button[data-op="takeover"][data-backup="backup-1"]');
  await page
    .waitForFunction(rowsAre, { names: BOTH, yellow: true })
    .catch(async (e) => {
      await shot(page, "status-page-failed.png");
      throw new Error(`rows did not turn yellow: ${e.message}`);
    });
  check(prompted === 1, "the token was asked once (prompt)");
  check(true, "both rows are yellow after the takeover");
  await page.locator("#redundancy.banner").waitFor({ state: "visible" });
  check(
    (await page.locator("#redundancy.banner").innerText()).includes("NO REDUNDANCY"),
    "the NO REDUNDANCY banner is shown"
  );
  await page.waitForFunction(() =>
    document.querySelector('tr[data-member="backup-1"]')?.innerText.includes("Online")
  );
  check(await rowShows(page, "main-1", "Offline"), "main-1 is Offline");
  check(
    await rowShows(page, "main-1", "10.0.3.6"),
    "main-1's current IP is its extra IP 10.0.3.6"
  );
  check(
    (await page.locator("#message").innerText()).includes("done"),
    "the page says the takeover is done"
  );
  await shot(page, "status-page-after-takeover.png");

  // 3. A second takeover is refused, with every failed precondition listed.
  await page.selectOption('select[data-backup="backup-1"]', "main-1");
  await page.click('button[data-op="takeover"][data-backup="backup-1"]');
  await page.locator("#message.error #failed").waitFor({ state: "visible" });
  const codes = await page.locator("#failed li").allInnerTexts();
  check(codes.includes("backup_not_standby"), `refusal lists backup_not_standby (${codes})`);
  check(codes.includes("main_not_main"), `refusal lists main_not_main (${codes})`);
  check(
    (await page.locator("#message").innerText()).includes("409"),
    "the refusal shows HTTP 409"
  );
  check(prompted === 1, "the token was remembered (no second prompt)");
  await shot(page, "status-page-refused.png");

  // 4. Reverse takeover: first with a wrong token (refused, forgotten), then the right one.
  await page.fill("#token", "wrong-token");
  await page.click('button[data-op="reverse"][data-main="main-1"]');
  await page.waitForFunction(() =>
    document.querySelector("#message.error")?.innerText.includes("401")
  );
  check((await page.inputValue("#token")) === "", "a refused token is forgotten");
  await page.click('button[data-op="reverse"][data-main="main-1"]');
  await page.waitForFunction(rowsAre, { names: BOTH, yellow: false });
  check(prompted === 2, "the token was asked again after the 401");
  check(true, "no row is yellow after the reverse takeover");
  await page.locator("#redundancy.redundant").waitFor({ state: "visible" });
  check(true, "the group is redundant again");
  await shot(page, "status-page-after-reverse.png");

  // 4b. Auto-refresh: a takeover made elsewhere (the API, not this page) shows up without a
  // reload, and what the operator was typing is kept.
  await page.fill("#reason", "half-typed reason");
  const api = async (path, body) => {
    const r = await fetch(new URL(path, url), {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify(body),
    });
    if (!r.ok) throw new Error(`POST ${path}: HTTP ${r.status} ${await r.text()}`);
  };
  await api("/api/v1/takeover", { backup: "backup-1", main: "main-1", reason: "browser test" });
  await page.waitForFunction(rowsAre, { names: BOTH, yellow: true });
  check(true, "the page refreshed itself after a takeover made through the API");
  check((await page.inputValue("#reason")) === "half-typed reason", "a half-typed reason is kept");
  check((await page.inputValue("#token")) === TOKEN, "the token is kept");
  await api("/api/v1/reverse-takeover", { main: "main-1", reason: "browser test" });
  await page.waitForFunction(rowsAre, { names: BOTH, yellow: false });
  check(true, "the page refreshed itself after the reverse takeover through the API");

  // 5. Without JavaScript: readable, controls off.
  const nojs = await browser.newContext({
    viewport: { width: 1280, height: 860 },
    javaScriptEnabled: false,
  });
  const plain = await nojs.newPage();
  plain.on("request", (r) => {
    if (!r.url().startsWith(origin)) foreign.push(r.url());
  });
  await plain.goto(url);
  check((await plain.locator("tr[data-member]").count()) === 2, "no JS: two member rows");
  check(!(await plain.locator("#commands").isVisible()), "no JS: the command bar is hidden");
  check(await plain.locator('select[data-backup="backup-1"]').isDisabled(), "no JS: controls disabled");
  await shot(plain, "status-page-no-js.png");

  // 6. Nothing from elsewhere, no script errors.
  check(foreign.length === 0, `no request to another origin (${foreign.join(", ")})`);
  check(pageErrors.length === 0, `no script errors (${pageErrors.join(" | ")})`);
  console.log("browser test: every check passed");
} catch (e) {
  failed = true;
  console.error(`browser test FAILED: ${e.stack || e}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
