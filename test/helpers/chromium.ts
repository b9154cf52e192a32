// Debian's chromium, driven by playwright-core (which never downloads a browser of its own): the
// console's end-to-end test and the bench's first-load figure.

import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";

export const CHROMIUM = process.env["TRESOR_CHROMIUM"] ?? "/usr/bin/chromium";

/** Why a browser test cannot run here, or false; under CI a missing chromium fails instead of skipping. */
export const chromiumSkip: string | false = existsSync(CHROMIUM) || process.env["CI"] ? false : `${CHROMIUM} is not installed (apt-get install chromium)`;

/** Launches chromium headless; as root it must run without its sandbox. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: process.getuid?.() === 0 ? ["--no-sandbox"] : [] });
}
