// Drives the `keygate dev` sign-in page (GET /dev) in Debian's headless Chromium:
// a 401 before signing in that the sign-in clears, sign in, call /protected and /me,
// sign out, call again and see the 401; an empty user id shows a styled error; a
// sign-in with organization fields puts the org into the token /me reads; a sign-in
// with plans, features and factor ages puts them into the token /me reads; the
// step-up route answers a stale verification with the body Clerk's
// useReverification() acts on (403, clerk_error), which the page receives and reads as
// the hook would, and a fresh one with 200; and no request of the page fails or
// answers 404 (no favicon is asked for: keygate's own metrics count no 404).
//
// Usage: node dev_page.mjs http://127.0.0.1:<port>
// Exits 0 when every step passed, 1 on the first failure (with the reason on stderr).
// playwright-core never downloads a browser; it drives /usr/bin/chromium.

import { launchChromium } from "./chromium.mjs";

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

// Whether `actual` has exactly the fields of `expected`, with equal values (the JSON of
// each, so arrays compare in order), whatever the order of the keys.
function sameFields(actual, expected) {
  if (actual === null || typeof actual !== "object") return false;
  const keys = Object.keys(expected);
  return Object.keys(actual).length === keys.length
    && keys.every((k) => JSON.stringify(actual[k]) === JSON.stringify(expected[k]));
}

// Whether two JSON values are equal, whatever the order of object keys.
function sameJson(a, b) {
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return a === b;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length
    && keys.every((k) => Object.prototype.hasOwnProperty.call(b, k) && sameJson(a[k], b[k]));
}

async function resultOf(page, path) {
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
    fail(`the ${path} answer is not JSON: ${text}`);
  }
  return { status, body };
}

async function call(page, button, path) {
  // Clear the last answer first so an old result cannot be mistaken for the new one.
  await page.evaluate(() => {
    document.getElementById("result-status").textContent = "";
  });
  await page.click(button);
  return resultOf(page, path);
}

const callProtected = (page) => call(page, "#call-protected", "/protected");
const callMe = (page) => call(page, "#call-me", "/me");

async function callStepUp(page, preset) {
  await page.selectOption("#reverification", preset);
  return call(page, "#call-step-up", `/dev/step-up?reverification=${preset}`);
}

const NO_ORG = { id: "", role: "", permissions: "" };
const NO_BILLING = { plans: "", features: "", fvaFirst: "", fvaSecond: "" };

async function signIn(page, user, org = NO_ORG, billing = NO_BILLING) {
  const before = await page.textContent("#token");
  await page.fill("#user-id", user);
  await page.fill("#org-id", org.id);
  await page.fill("#org-role", org.role);
  await page.fill("#org-permissions", org.permissions);
  await page.fill("#plans", billing.plans);
  await page.fill("#features", billing.features);
  await page.fill("#fva-first", billing.fvaFirst);
  await page.fill("#fva-second", billing.fvaSecond);
  await page.click("#sign-in");
  await page.waitForFunction(
    (previous) => {
      const shown = document.getElementById("token").textContent;
      return shown.split(".").length === 3 && shown !== previous;
    },
    before,
    { timeout: STEP_TIMEOUT_MS },
  );
}

async function main() {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    page.on("pageerror", (err) => console.error(`page error: ${err.message}`));
    // Every request of the page that failed or was not found (a missing favicon is one).
    const broken = [];
    page.on("requestfailed", (req) => broken.push(`${req.url()} failed`));
    page.on("response", (res) => {
      if (res.status() === 404) broken.push(`${res.url()} answered 404`);
    });

    const response = await page.goto(`${base}/dev`);
    if (!response || response.status() !== 200) {
      fail(`GET /dev answered ${response && response.status()}`);
    }

    // Before signing in: 401, shown until the sign-in clears it.
    const anonymous = await callProtected(page);
    if (anonymous.status !== 401) {
      fail(`before sign-in, /protected answered ${anonymous.status}`);
    }

    // Sign in: the previous 401 is gone.
    await signIn(page, userId);
    const state = await page.textContent("#session-state");
    if (state.trim() !== `Signed in as ${userId}`) {
      fail(`after sign-in the page says ${JSON.stringify(state)}`);
    }
    const leftover = [await page.textContent("#result-status"), await page.textContent("#result-body")];
    if (leftover.some((text) => text.trim() !== "")) {
      fail(`after sign-in the previous answer is still shown: ${JSON.stringify(leftover)}`);
    }
    console.log(`signed in as ${userId}; the earlier 401 was cleared`);

    // Call /protected with the token.
    const signedIn = await callProtected(page);
    if (signedIn.status !== 200 || signedIn.body.message !== `Hello, user ${userId}`) {
      fail(`signed in, /protected answered ${signedIn.status} ${JSON.stringify(signedIn.body)}`);
    }
    console.log(`/protected: ${signedIn.status} ${JSON.stringify(signedIn.body)}`);

    // Call /me: who the token says the user is, no organization.
    const me = await callMe(page);
    if (me.status !== 200 || me.body.user_id !== userId || me.body.org !== null
        || typeof me.body.profile !== "object" || me.body.profile === null) {
      fail(`signed in, /me answered ${me.status} ${JSON.stringify(me.body)}`);
    }
    console.log(`/me: ${me.status} user_id ${me.body.user_id}`);

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

    // An empty user id: the issuer's message, styled as an error.
    await page.fill("#user-id", "   ");
    await page.click("#sign-in");
    await page.waitForFunction(
      () => document.getElementById("sign-in-error").textContent.trim() !== "",
      null,
      { timeout: STEP_TIMEOUT_MS },
    );
    const error = await page.$eval("#sign-in-error", (el) => ({
      text: el.textContent.trim(),
      isError: el.classList.contains("error"),
      color: getComputedStyle(el).color,
      shown: getComputedStyle(el).display !== "none",
    }));
    if (error.text !== "sub must not be empty" || !error.isError || !error.shown
        || error.color === "rgb(29, 29, 31)") {
      fail(`the empty user id error is ${JSON.stringify(error)}`);
    }
    console.log(`empty user id: ${JSON.stringify(error)}`);

    // Sign in with an organization: /me shows it as keygate reads Clerk's claims.
    const orgUser = `${userId}_org`;
    await signIn(page, orgUser, {
      id: "org_browser",
      role: "admin",
      permissions: "org:invoices:read, org:invoices:manage, org:reports:read",
    });
    const errorAfter = await page.textContent("#sign-in-error");
    if (errorAfter.trim() !== "") {
      fail(`a successful sign-in still shows the error ${JSON.stringify(errorAfter)}`);
    }
    const withOrg = await callMe(page);
    const expected = {
      id: "org_browser",
      slug: null,
      role: "org:admin",
      permissions: ["org:invoices:read", "org:invoices:manage", "org:reports:read"],
    };
    if (withOrg.status !== 200 || withOrg.body.user_id !== orgUser
        || !sameFields(withOrg.body.org, expected)) {
      fail(`with an organization, /me answered ${withOrg.status} ${JSON.stringify(withOrg.body)}`);
    }
    console.log(`/me with an organization: org ${JSON.stringify(withOrg.body.org)}`);

    // Plans, features and factor ages: /me shows them as the token carries them. The
    // first factor was verified 30 minutes ago and there is no second factor.
    const billedUser = `${userId}_billing`;
    await signIn(page, billedUser, NO_ORG, {
      plans: "u:free, o:pro",
      features: "u:export",
      fvaFirst: "30",
      fvaSecond: "-1",
    });
    const billed = await callMe(page);
    if (billed.status !== 200 || billed.body.plan !== "u:free,o:pro"
        || billed.body.features !== "u:export"
        || JSON.stringify(billed.body.fva) !== "[30,-1]") {
      fail(`with plans and factor ages, /me answered ${billed.status} ${JSON.stringify(billed.body)}`);
    }
    console.log(`/me with billing: plan ${billed.body.plan}, features ${billed.body.features}, fva ${JSON.stringify(billed.body.fva)}`);

    // The step-up route: 30 minutes is too old for `strict` (10), so the page receives
    // the 403 body Clerk's useReverification() acts on, and reads it as the hook does.
    const stale = await callStepUp(page, "strict");
    const stepUp = {
      detail: "Reverification required",
      code: "reverification_required",
      clerk_error: {
        type: "forbidden",
        reason: "reverification-error",
        metadata: { reverification: "strict" },
      },
    };
    if (stale.status !== 403 || !sameJson(stale.body, stepUp)) {
      fail(`a stale verification: /dev/step-up answered ${stale.status} ${JSON.stringify(stale.body)}`);
    }
    const reading = (await page.textContent("#hook-reading")).trim();
    if (!reading.startsWith("reverification hint") || !reading.includes("level second_factor")) {
      fail(`the page reads the step-up answer as ${JSON.stringify(reading)}`);
    }
    console.log(`/dev/step-up (strict, fva [30,-1]): ${stale.status} ${JSON.stringify(stale.body)}; ${reading}`);

    // `lax` (a day) accepts the same verification; the hook has nothing to do.
    const lax = await callStepUp(page, "lax");
    const laxReading = (await page.textContent("#hook-reading")).trim();
    if (lax.status !== 200 || !laxReading.startsWith("no reverification hint")) {
      fail(`lax: /dev/step-up answered ${lax.status} ${JSON.stringify(lax.body)}; ${laxReading}`);
    }

    // After "verifying again" (a fresh token with the first factor 0 minutes ago), the
    // retried request passes: the end of the step-up flow.
    await signIn(page, billedUser, NO_ORG, { ...NO_BILLING, fvaFirst: "0", fvaSecond: "-1" });
    const fresh = await callStepUp(page, "strict");
    if (fresh.status !== 200 || !String(fresh.body.message).startsWith("Reverified (strict)")) {
      fail(`a fresh verification: /dev/step-up answered ${fresh.status} ${JSON.stringify(fresh.body)}`);
    }
    console.log(`/dev/step-up (strict, fva [0,-1]): ${fresh.status} ${JSON.stringify(fresh.body)}`);

    if (broken.length > 0) {
      fail(`requests of the page failed: ${broken.join("; ")}`);
    }
    // Chromium asks for /favicon.ico outside the page's own events, so the server's
    // metrics tell: no request of this keygate (fresh for this test) was answered 404.
    const metrics = await (await fetch(`${base}/metrics`)).text();
    const notFound = metrics.split("\n").filter(
      (line) => line.startsWith("keygate_http_request_duration_seconds_count")
        && line.includes('status="404"') && !line.endsWith(" 0"),
    );
    if (notFound.length > 0) {
      fail(`keygate answered 404 to the page: ${notFound.join("; ")}`);
    }
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
