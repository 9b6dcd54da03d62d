// Drives Debian's chromium (Playwright) through the built-in signing page of a running esignsp:
//   node signing.mjs <chromium> <task URL> <sign|decline> <expected status> <screenshot.png> <callback URL>
// NO_JS=1 runs it with JavaScript disabled (the page must work without it).
// LOGIN=<login> logs in at the OpenID Provider first (signing.signer_authentication = "oidc";
// oidc-provider's development login and consent forms, tests/oidc), and checks the page then
// names the signer (LOGIN_NAME, the name the provider gives that login).
// Opens the task URL, checks the page lists its documents, clicks the button, and follows the
// 303 to the process's finish_callback_url (<callback URL>, a page that answers 200). Prints
// the URL it landed on; fails unless it carries status=<expected status> and the process's
// signer_process_id.
import { chromium } from "playwright-core";

const [browserPath, taskUrl, action, expected, screenshot, callback] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: browserPath, args: ["--no-sandbox"] });
try {
  // Tall enough for the page of one document without scrolling: in headless chromium a click
  // after scrolling past a loaded inline PDF viewer does not reach the button.
  const context = await browser.newContext({
    javaScriptEnabled: process.env.NO_JS !== "1",
    viewport: { width: 1280, height: 1400 },
  });
  const page = await context.newPage();
  const seen = [];
  page.on("response", (r) => r.url().startsWith("http") && seen.push(`${r.status()} ${r.request().method()} ${r.url()}`));
  page.on("requestfailed", (r) => seen.push(`failed ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  process.on("exit", (code) => code !== 0 && console.error(`what the page loaded:\n  ${seen.join("\n  ")}`));
  // Every request of the page (its documents' inline views included) settled, as a reader's
  // would be before pressing a button.
  let response = await page.goto(taskUrl, { waitUntil: "networkidle" });
  if (process.env.LOGIN) {
    const task = new URL(taskUrl);
    if (new URL(page.url()).origin === task.origin) throw new Error(`no login asked for: ${page.url()}`);
    await page.locator('input[name="login"]').fill(process.env.LOGIN);
    await page.locator('input[name="password"]').fill("any password");
    await page.locator("button[type=submit]").click();
    // The consent form; then the provider sends the browser back through esignsp's callback
    // to the task URL.
    const consent = page.getByRole("button", { name: "Continue" });
    await consent.waitFor();
    const back = page.waitForResponse((r) => r.url() === taskUrl && r.status() === 200, { timeout: 60000 });
    await consent.click();
    response = await back;
    await page.waitForLoadState("networkidle");
    const signer = await page.locator("p.signer").innerText();
    if (!signer.includes(process.env.LOGIN_NAME ?? process.env.LOGIN)) throw new Error(`the page names ${signer}`);
    console.log(`logged in at the provider: ${signer}`);
  }
  if (response.status() !== 200) throw new Error(`the task URL answered ${response.status()}`);
  const heading = await page.locator("h1").innerText();
  if (!/^Sign \d+ documents?$/.test(heading)) throw new Error(`unexpected heading: ${heading}`);
  const documents = await page.locator("li.document").count();
  if (documents < 1) throw new Error("no document listed");
  const frames = await page.locator("li.document iframe").count();
  if (frames !== documents) throw new Error(`${documents} documents but ${frames} inline views`);
  await page.screenshot({ path: screenshot, fullPage: true });
  const button = page.getByRole("button", { name: action === "sign" ? "Sign" : "Decline", exact: true });
  await Promise.all([page.waitForURL((url) => url.href.startsWith(callback), { timeout: 60000 }), button.click()]);
  const landed = new URL(page.url());
  const id = new URL(taskUrl).searchParams.get("signerProcessId");
  if (landed.searchParams.get("status") !== expected || landed.searchParams.get("signer_process_id") !== id) {
    throw new Error(`landed on ${page.url()}, expected status=${expected} and signer_process_id=${id}`);
  }
  console.log(`${action}: ${documents} document(s) listed, landed on ${page.url()}`);
} finally {
  await browser.close();
}
