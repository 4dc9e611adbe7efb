// Drives the `keygate dev` sign-in page (GET /dev) in Debian's headless Chromium:
// sign in, call /protected, see the greeting, sign out, call again, see the 401.
//
// Usage: node dev_page.mjs http://127.0.0.1:<port>
// Exits 0 when every step passed, 1 on the first failure (with the reason on stderr).
// playwright-core never downloads a browser; it drives /usr/bin/chromium.

import { chromium } from "playwright-core";

const base = process.argv[2];
if (!base) {
  console.error("usage: node dev_page.mjs <base-url>");
  process.exit(2);
}

const STEP_TIMEOUT_MS = 15_000;
const userId = `user_browser_${Math.random().toString(16).slice(2, 10)}`;

function fail(message) {
  throw new Error(message);
}

async function resultOf(page) {
  // The page writes the status last, so wait until it is a number.
  await page.waitForFunction(
    () => /^\d+$/.test(document.getElementById("result-status").textContent),
    null,
    { timeout: STEP_TIMEOUT_MS },
  );
  const status = Number(await page.textContent("#result-status"));
  const text = await page.textContent("#result-body");
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    fail(`the /protected answer is not JSON: ${text}`);
  }
  return { status, body };
}

async function callProtected(page) {
  // Clear the last answer first so an old result cannot be mistaken for the new one.
  await page.evaluate(() => {
    document.getElementById("result-status").textContent = "";
  });
  await page.click("#call-protected");
  return resultOf(page);
}

async function main() {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
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
    timeout: 60_000,
  });
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    page.on("pageerror", (err) => console.error(`page error: ${err.message}`));

    const response = await page.goto(`${base}/dev`);
    if (!response || response.status() !== 200) {
      fail(`GET /dev answered ${response && response.status()}`);
    }

    // Sign in.
    await page.fill("#user-id", userId);
    await page.click("#sign-in");
    await page.waitForFunction(
      () => document.getElementById("token").textContent.split(".").length === 3,
      null,
      { timeout: STEP_TIMEOUT_MS },
    );
    console.log(`signed in as ${userId}`);

    // Call /protected with the token.
    const signedIn = await callProtected(page);
    if (signedIn.status !== 200 || signedIn.body.message !== `Hello, user ${userId}`) {
      fail(`signed in, /protected answered ${signedIn.status} ${JSON.stringify(signedIn.body)}`);
    }
    console.log(`/protected: ${signedIn.status} ${JSON.stringify(signedIn.body)}`);

    // Sign out: the token is forgotten.
    await page.click("#sign-out");
    const tokenAfter = await page.textContent("#token");
    if (tokenAfter.trim() !== "") {
      fail("the token is still shown after signing out");
    }

    // Call again: 401 with the missing_token body.
    const signedOut = await callProtected(page);
    if (signedOut.status !== 401 || signedOut.body.code !== "missing_token") {
      fail(`signed out, /protected answered ${signedOut.status} ${JSON.stringify(signedOut.body)}`);
    }
    console.log(`after sign-out /protected: ${signedOut.status} ${JSON.stringify(signedOut.body)}`);
  } finally {
    await browser.close();
  }
}

main().then(
  () => {
    console.log("dev page browser test: passed");
    process.exit(0);
  },
  (err) => {
    console.error(`dev page browser test: FAILED: ${err && err.message ? err.message : err}`);
    process.exit(1);
  },
);
