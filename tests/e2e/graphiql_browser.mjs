// Drives GraphiQL in headless Chromium for tests/e2e/test_graphiql_browser.py.
// Input: one JSON object on stdin
//   {url, steps: [{query, headers?, expect, trigger?}], docs?: "text", screenshot?, timeoutMs?}.
// A step with `trigger: {url, headers, body}` is a subscription: once it runs, the script POSTs
// `body` (with "{{n}}" replaced by the attempt number) from outside the browser, again every
// 1.5 s, until the response pane shows `expect`.
// Output: one JSON object on stdout
//   {opened: {status, text}, results: [{text}], docs, outside, consoleErrors: [{phase, text}],
//    pageErrors}.
// With no steps, the page is only opened (`opened` says what the browser got).
// Console errors are tagged with the phase they happened in: "load" (before the first step
// typed its headers) or "run"; so are the requests refused with 401 (`refused`), with whether
// they carried an Authorization header. Every request leaving the server's origin is aborted and
// reported in `outside`. With `docs`, the Docs panel is opened and its text returned once it
// shows that text (the schema was introspected with the headers typed in).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

async function readStdin() {
  let data = "";
  for await (const chunk of process.stdin) data += chunk;
  return JSON.parse(data);
}

// Replace an editor's text the way a user does: focus it, select all, type.
async function fill(page, editor, text) {
  await editor.locator(".CodeMirror").click();
  await page.keyboard.press("ControlOrMeta+A");
  await page.keyboard.press("Backspace");
  // insertText types the characters without CodeMirror's auto-closing of brackets.
  await page.keyboard.insertText(text);
}

// The subscription may not be registered on the server yet when the first write lands.
async function triggerUntilShown(trigger, shown, timeout) {
  const deadline = Date.now() + timeout;
  for (let n = 1; Date.now() < deadline; n += 1) {
    const response = await fetch(trigger.url, {
      method: "POST",
      headers: trigger.headers,
      body: trigger.body.replaceAll("{{n}}", String(n)),
    });
    if (!response.ok) throw new Error(`trigger answered ${response.status}: ${await response.text()}`);
    try {
      await shown.waitFor({ timeout: 1500 });
      return;
    } catch {
      // not shown yet: write again
    }
  }
}

const input = await readStdin();
const origin = new URL(input.url).origin;
const timeout = input.timeoutMs ?? 20000;
const userDataDir = await mkdtemp(join(tmpdir(), "cg-chromium-"));
const outside = [];
const consoleErrors = [];
const pageErrors = [];
const refused = [];
const results = [];
let phase = "load";
let docs = null;
let opened = null;

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: input.executablePath ?? "/usr/bin/chromium",
  headless: true,
  args: CHROMIUM_ARGS, // the new, empty user-data-dir is the first argument
  viewport: { width: 1400, height: 900 },
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(timeout);
  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push({ phase, text: message.text() });
  });
  page.on("pageerror", (error) => pageErrors.push(String(error)));
  // Each 401, and whether its request carried a key: the console's message does not say.
  page.on("response", (response) => {
    if (response.status() !== 401) return;
    const withKey = response.request().headers()["authorization"] !== undefined;
    refused.push({ phase, url: response.url(), withKey });
  });
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(origin) || url.startsWith("data:") || url.startsWith("blob:")) {
      return route.continue();
    }
    outside.push(url);
    return route.abort();
  });

  const navigation = await page.goto(input.url, { waitUntil: "load" });
  const text = await page.locator("body").innerText();
  opened = { status: navigation.status(), text: text.slice(0, 2000) };
  const queryEditor = page.locator(".graphiql-query-editor");
  if (input.steps.length) await queryEditor.locator(".CodeMirror").waitFor();

  for (const step of input.steps) {
    if (step.headers !== undefined) {
      phase = "run";
      await page.getByRole("button", { name: "Headers" }).click();
      await fill(page, page.locator(".graphiql-editor-tool .graphiql-editor:visible"), step.headers);
    }
    await fill(page, queryEditor, step.query);
    // GraphiQL parses the editor after a debounce; run before that and it sends the previous
    // document's kind (a subscription would go over HTTP instead of its websocket).
    await page.waitForTimeout(1000);
    await page.locator(".graphiql-execute-button").click();
    const response = page.locator(".graphiql-response .CodeMirror-code");
    const shown = response.filter({ hasText: step.expect });
    if (step.trigger) await triggerUntilShown(step.trigger, shown, timeout);
    await shown.waitFor();
    results.push({ text: await response.innerText() });
  }
  if (input.docs) {
    await page.getByRole("button", { name: "Show Documentation Explorer" }).click();
    const explorer = page.locator(".graphiql-doc-explorer");
    await explorer.filter({ hasText: input.docs }).waitFor();
    docs = await explorer.innerText();
  }
  if (input.screenshot) await page.screenshot({ path: input.screenshot, fullPage: true });
} finally {
  await context.close();
  await rm(userDataDir, { recursive: true, force: true });
}
console.log(
  JSON.stringify({ opened, results, docs, outside, consoleErrors, pageErrors, refused }),
);
