// Real-browser test of the framewire dashboard: headless Debian chromium driven by playwright-core.
//
// Needs a running hub with live streams `cam-1` (and a device `cam-1`):
//   FRAMEWIRE_HTTP=http://127.0.0.1:PORT   the dashboard (required; https:// for a TLS hub, whose
//                                          self-signed certificate the browser accepts; node's
//                                          fetch needs NODE_EXTRA_CA_CERTS, the framewire client
//                                          FRAMEWIRE_TLS_FINGERPRINT)
//   FRAMEWIRE_SERVER=127.0.0.1:PORT        native port (for FRAMEWIRE_BIN)
//   FRAMEWIRE_BIN=path/to/framewire        optional: sends a message to check the event log
//   ARTIFACTS=dir                          screenshots go there
//   CHROMIUM=/usr/bin/chromium             the browser
//   FRAMES_DIR=dir of JPEGs                the file uploaded (default: tests/data/frames-1080p)
// `run.sh` sets all of this up. Prints one line per check and `N passed, N failed` last.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";

import { chromium } from "playwright-core";

const HTTP = (process.env.FRAMEWIRE_HTTP || "").replace(/\/+$/, "");
const SERVER = process.env.FRAMEWIRE_SERVER || "";
const BIN = process.env.FRAMEWIRE_BIN || "";
const ARTIFACTS = process.env.ARTIFACTS || path.join(tmpdir(), "framewire-browser-artifacts");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const FRAMES_DIR =
  process.env.FRAMES_DIR ||
  path.join(path.dirname(new URL(import.meta.url).pathname), "..", "data", "frames-1080p");
const STREAM = "cam-1";
const DEVICE = "cam-1";
const T = 15_000; // longest wait for any one thing

const HTTPS = HTTP.startsWith("https://");
if (!/^https?:\/\/127\.0\.0\.1:/.test(HTTP)) {
  console.error("FRAMEWIRE_HTTP must be http://127.0.0.1:PORT or https://127.0.0.1:PORT (see run.sh)");
  process.exit(2);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value (returned) or `ms` pass (throws with `what`). */
async function until(what, fn, ms = T) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ""}`);
    await sleep(100);
  }
}

async function streamFigures(name) {
  const res = await fetch(`${HTTP}/api/streams`);
  const list = await res.json();
  return list.find((s) => s.name === name);
}

// ---- the tiny harness

const results = [];
async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push({ name, ok: true });
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push({ name, ok: false });
    console.log(`FAIL ${name} (${Date.now() - t0} ms)\n     ${String(e && e.stack ? e.stack : e).replace(/\n/g, "\n     ")}`);
  }
}

// ---- browser

await mkdir(ARTIFACTS, { recursive: true });
const profile = await mkdtemp(path.join(tmpdir(), "framewire-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
  viewport: { width: 1280, height: 900 },
  // A TLS hub's self-signed certificate (what a person accepts once in the browser's warning).
  ignoreHTTPSErrors: HTTPS,
});
const page = context.pages()[0] || (await context.newPage());
page.setDefaultTimeout(T);

/** Console errors and warnings, and uncaught exceptions, for the whole run. */
const problems = [];
page.on("console", (m) => {
  if (m.type() === "error" || m.type() === "warning") {
    const loc = m.location();
    problems.push(`console.${m.type()}: ${m.text()}${loc && loc.url ? ` (${loc.url}:${loc.lineNumber})` : ""}`);
  }
});
page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));

const tile = page.locator(`.tile[data-stream="${STREAM}"]`);
const tileImg = tile.locator(".frame img");

try {
  await check("1. dashboard loads, goes live, no console errors", async () => {
    const res = await page.goto(`${HTTP}/`, { waitUntil: "load" });
    assert.equal(res.status(), 200);
    assert.equal(await page.title(), "framewire");
    await page.locator("#conn.live").waitFor({ timeout: T });
    await until(`a loaded frame in the ${STREAM} tile`, () => tileImg.evaluate((i) => i.complete && i.naturalWidth > 0));
    await until("the header's file count", async () => /^[\d,]+$/.test(await page.locator("#files-stored").textContent()));
    await until("the clients table", () => page.locator("#clients-body tr:not(.empty-row)").count());
    await sleep(1000); // a stats message or two more
    assert.deepEqual(problems, [], "console errors or warnings");
  });

  await check(`2. the ${STREAM} tile shows new frames (two screenshots 1.5 s apart differ)`, async () => {
    await until("a loaded frame", () => tileImg.evaluate((i) => i.complete && i.naturalWidth > 0));
    const src1 = await tileImg.getAttribute("src");
    const shot1 = await tile.locator(".frame").screenshot({ path: path.join(ARTIFACTS, "tile-1.png") });
    await sleep(1500);
    await until("the next frame to load", () => tileImg.evaluate((i) => i.complete));
    const src2 = await tileImg.getAttribute("src");
    const shot2 = await tile.locator(".frame").screenshot({ path: path.join(ARTIFACTS, "tile-2.png") });
    assert.notEqual(src1, src2, "the tile loaded a newer latest.jpg?t=<seq>");
    assert.ok(!shot1.equals(shot2), "the tile's pixels changed");
    assert.match(await tile.locator(".fps").textContent(), /^\d+\.\d fps$/);
    // One tile never holds more than one image request: its src is a plain latest.jpg.
    assert.match(src2, new RegExp(`^/streams/${STREAM}/latest\\.jpg\\?t=\\d+$`));
  });

  await check("3. files uploaded meanwhile appear in the gallery, with thumbnails", async () => {
    await page.fill("#filter-prefix", "browser-test/");
    await until("the filtered listing", async () =>
      /match|file/.test(await page.locator("#files-status").textContent()),
    );
    const frames = (await readdir(FRAMES_DIR)).filter((f) => /\.jpe?g$/i.test(f)).sort();
    assert.ok(frames.length > 0, `no JPEGs in ${FRAMES_DIR}`);
    const jpeg = await readFile(path.join(FRAMES_DIR, frames[Math.min(6, frames.length - 1)]));
    // A plain name, and one that needs per-segment percent-encoding.
    const uploads = [
      ["browser-test/upload.jpg", "browser-test/upload.jpg"],
      ["browser-test/ünï côde #1?.jpg", "browser-test/%C3%BCn%C3%AF%20c%C3%B4de%20%231%3F.jpg"],
    ];
    for (const [, url] of uploads) {
      const res = await fetch(`${HTTP}/files/${url}?overwrite=1`, { method: "PUT", body: jpeg });
      assert.ok(res.status === 201 || res.status === 200, `PUT ${url}: HTTP ${res.status} ${await res.text()}`);
    }
    for (const [p, url] of uploads) {
      const item = page.locator(`#gallery li.file[data-path="${p.replace(/"/g, '\\"')}"]`);
      await item.waitFor({ timeout: T });
      await item.scrollIntoViewIfNeeded();
      const img = item.locator(".thumb img");
      await until(`the thumbnail of ${p} to load`, () =>
        img.evaluate((i) => i.complete && i.naturalWidth > 0 && i.src.includes("/thumbs/")),
      );
      const href = await item.locator("a").getAttribute("href");
      assert.equal(href, `/files/${url}`);
      const back = Buffer.from(await (await fetch(`${HTTP}${href}`)).arrayBuffer());
      assert.ok(back.equals(jpeg), `downloading ${href} gives the uploaded bytes`);
    }
    await page.fill("#filter-sender", "nobody@nowhere");
    await until("the sender filter", async () => (await page.locator("#files-status").textContent()) === "No files match.");
    assert.equal(await page.locator("#gallery li.file").count(), 0);
    await page.fill("#filter-sender", "");
    await page.fill("#filter-prefix", "");
    await until("the unfiltered listing", () => page.locator("#gallery li.file").count());
  });

  await check(`4. a command sent from the page gets its reply (${DEVICE} status)`, async () => {
    await page.locator(`#cmd-device option[value="${DEVICE}"]`).waitFor({ state: "attached", timeout: T });
    await page.selectOption("#cmd-device", DEVICE);
    await page.fill("#cmd-line", "status");
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith(`/api/devices/${DEVICE}/commands`) && r.request().method() === "POST", { timeout: T }),
      page.click("#cmd-send"),
    ]);
    const body = await response.json();
    assert.equal(body.status, "ok", JSON.stringify(body));
    assert.ok(body.reply.length > 0, "the device said something");
    const entry = page.locator("#cmd-out .cmd-entry").first();
    await until("the reply in the output area", async () => (await entry.getAttribute("data-status")) === "ok");
    assert.equal((await entry.locator(".badge").textContent()).trim(), "ok");
    assert.equal(await entry.locator(".reply").textContent(), body.reply);
    assert.match(await entry.locator(".cmd-what").textContent(), new RegExp(`^${DEVICE} › status$`));
  });

  await check("5. the event log shows uploads and messages, newest first, as text", async () => {
    await until("the upload event", () =>
      page.locator("#events li.event[data-kind=stored] .ev-text", { hasText: "browser-test/upload.jpg" }).count(),
    );
    if (BIN && SERVER) {
      const text = `<b>hello</b> from the browser test ${Date.now()}`;
      await promisify(execFile)(BIN, ["--server", SERVER, "--name", "browser-test", "msg", text], { timeout: T });
      const events = page.locator("#events li.event");
      await until("the message in the log", () => events.filter({ hasText: text }).count());
      const order = await events.evaluateAll((lis, t) => lis.map((li) => li.querySelector(".ev-text").textContent), text);
      const mine = order.indexOf(text);
      const upload = order.findIndex((x) => x.includes("browser-test/upload.jpg"));
      assert.ok(mine >= 0 && mine < upload, `newest on top: message at ${mine}, older upload at ${upload}`);
      const li = events.nth(mine);
      assert.equal(await li.getAttribute("data-kind"), "message");
      assert.match(await li.locator(".ev-client").textContent(), /^browser-test@/);
      assert.equal(await li.locator(".ev-text b").count(), 0, "text is not parsed as HTML");
    } else {
      console.log("     (FRAMEWIRE_BIN or FRAMEWIRE_SERVER not set: message part skipped)");
    }
    assert.ok((await page.locator("#events li.event").count()) <= 200, "the log is capped");
  });

  await page.screenshot({ path: path.join(ARTIFACTS, "desktop.png"), fullPage: true });

  await check("6. a tile opens the full-size MJPEG view; closing it drops the connection", async () => {
    const before = (await streamFigures(STREAM)).subscribers;
    await tile.scrollIntoViewIfNeeded();
    await tile.click();
    const viewer = page.locator("#viewer");
    await viewer.waitFor({ state: "visible", timeout: T });
    const img = page.locator("#viewer-frame img");
    assert.equal(await img.getAttribute("src"), `/streams/${STREAM}.mjpeg`);
    await until("an MJPEG frame", () => img.evaluate((i) => i.naturalWidth > 0));
    await until("the hub to count the viewer", async () => (await streamFigures(STREAM)).subscribers === before + 1);
    await sleep(1200); // let the info line fill in from a stats message
    await page.screenshot({ path: path.join(ARTIFACTS, "overlay.png") });
    await page.keyboard.press("Escape");
    await viewer.waitFor({ state: "hidden", timeout: T });
    assert.equal(await page.locator("#viewer-frame img").count(), 0, "the MJPEG image is gone");
    await until("the hub to see the viewer leave", async () => (await streamFigures(STREAM)).subscribers === before);

    // And the Close button does the same.
    await tile.click();
    await viewer.waitFor({ state: "visible", timeout: T });
    await until("the hub to count the viewer", async () => (await streamFigures(STREAM)).subscribers === before + 1);
    await page.click("#viewer-close");
    await viewer.waitFor({ state: "hidden", timeout: T });
    await until("the hub to see the viewer leave", async () => (await streamFigures(STREAM)).subscribers === before);
  });

  await check("7. phone widths: one column, nothing wider than the screen", async () => {
    for (const [width, height] of [
      [360, 740],
      [390, 844],
    ]) {
      await page.setViewportSize({ width, height });
      await sleep(400);
      const m = await page.evaluate(() => {
        const tile = document.querySelector(".tile").getBoundingClientRect();
        const tiles = document.getElementById("tiles").getBoundingClientRect();
        return {
          scrollWidth: document.documentElement.scrollWidth,
          innerWidth: window.innerWidth,
          tileWidth: tile.width,
          tilesWidth: tiles.width,
          columns: getComputedStyle(document.querySelector("main")).gridTemplateColumns.split(" ").length,
        };
      });
      assert.ok(m.scrollWidth <= m.innerWidth, `no horizontal page scroll at ${width}px: ${JSON.stringify(m)}`);
      assert.equal(m.columns, 1, `single column at ${width}px`);
      assert.ok(Math.abs(m.tileWidth - m.tilesWidth) < 1, `tiles full width at ${width}px: ${JSON.stringify(m)}`);
      if (width === 390) await page.screenshot({ path: path.join(ARTIFACTS, "phone.png"), fullPage: true });
    }
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  await check("8. no console errors or warnings during the whole run", async () => {
    assert.deepEqual(problems, []);
  });
} finally {
  await context.close();
  await rm(profile, { recursive: true, force: true });
}

const passed = results.filter((r) => r.ok).length;
const failed = results.length - passed;
await writeFile(path.join(ARTIFACTS, "result.txt"), `${passed} passed, ${failed} failed\n`);
console.log(`screenshots in ${ARTIFACTS}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
