// Debian's headless Chromium as every browser test starts it. playwright-core never
// downloads a browser; it drives /usr/bin/chromium.

import { chromium } from "playwright-core";

export function launchChromium() {
  return chromium.launch({
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
    // Starting Chromium on a busy two-core machine can take a while.
    timeout: 60_000,
  });
}
