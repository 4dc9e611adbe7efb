// A page on a second origin calls keygate with fetch in Debian's headless Chromium, as
// a Next.js frontend on its own origin does: with a Bearer token (a preflighted call)
// it reads the 200 body, without one it reads the 401 body and the challenge. A page on
// an origin keygate does not allow cannot read anything.
//
// Usage: node cors.mjs <keygate-base-url> <allowed-page-port> <other-page-port> <token>
// Exits 0 when every step passed, 1 on the first failure (with the reason on stderr).

import http from "node:http";
import { launchChromium } from "./chromium.mjs";

const [keygate, allowedPort, otherPort, token] = process.argv.slice(2);
if (!keygate || !allowedPort || !otherPort || !token) {
  console.error("usage: node cors.mjs <keygate-base-url> <allowed-page-port> <other-page-port> <token>");
  process.exit(2);
}

function fail(message) {
  throw new Error(message);
}

// The frontend: any page will do, what matters is the origin it is served from.
function servePage(port) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end('<!doctype html><title>frontend</title><link rel="icon" href="data:,"><p>frontend</p>');
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(Number(port), "127.0.0.1", () => resolve(server));
  });
}

// Runs in the page: one fetch to keygate, and what the page can read of the answer.
async function call(page, withToken) {
  return page.evaluate(
    async ({ keygate, token, withToken }) => {
      const headers = withToken ? { Authorization: `Bearer ${token}` } : {};
      try {
        const res = await fetch(`${keygate}/protected`, { headers, credentials: "include" });
        return {
          status: res.status,
          body: await res.json(),
          challenge: res.headers.get("www-authenticate"),
          requestId: res.headers.get("x-request-id"),
        };
      } catch (err) {
        return { blocked: String(err) };
      }
    },
    { keygate, token, withToken },
  );
}

async function main() {
  const pages = [await servePage(allowedPort), await servePage(otherPort)];
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(15_000);
    page.on("pageerror", (err) => console.error(`page error: ${err.message}`));
    await page.goto(`http://127.0.0.1:${allowedPort}/`);

    const signedIn = await call(page, true);
    if (signedIn.status !== 200 || signedIn.body.message !== "Hello, user user_cors_browser") {
      fail(`with a token, the page read ${JSON.stringify(signedIn)}`);
    }
    if (!signedIn.requestId) fail("the page cannot read X-Request-Id");
    console.log(`with a token: ${signedIn.status} ${JSON.stringify(signedIn.body)}`);

    const signedOut = await call(page, false);
    if (signedOut.status !== 401 || signedOut.body.code !== "missing_token") {
      fail(`without a token, the page read ${JSON.stringify(signedOut)}`);
    }
    if (signedOut.challenge !== "Bearer") {
      fail(`the page cannot read WWW-Authenticate: ${JSON.stringify(signedOut)}`);
    }
    console.log(`without a token: ${signedOut.status} ${JSON.stringify(signedOut.body)}`);

    await page.goto(`http://127.0.0.1:${otherPort}/`);
    const other = await call(page, true);
    if (!other.blocked) fail(`a page on a disallowed origin read ${JSON.stringify(other)}`);
    console.log(`from a disallowed origin: ${other.blocked}`);
  } finally {
    await browser.close();
    for (const server of pages) server.close();
  }
}

main().then(
  () => {
    console.log("CORS browser test: passed");
    process.exit(0);
  },
  (err) => {
    console.error(`CORS browser test: FAILED: ${err && err.message ? err.message : err}`);
    process.exit(1);
  },
);
