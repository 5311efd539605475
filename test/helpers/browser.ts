// A real browser for the status-page tests: Debian's chromium driven by playwright-core, headless,
// closed at the test's teardown. `BROWSER_SKIP` is the tap `skip` option for a machine without it.

import { existsSync } from 'node:fs';
import type { Page } from 'playwright-core';
import type { Teardown } from './sluice.js';

export const CHROMIUM = '/usr/bin/chromium';
export const BROWSER_SKIP: false | string = existsSync(CHROMIUM) ? false : `no browser: ${CHROMIUM} is missing (apt-get install -y chromium)`;

/** A fresh page in a new headless chromium, 1400×420. */
export async function openPage(t: Teardown): Promise<Page> {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  t.teardown(() => browser.close());
  return browser.newPage({ viewport: { width: 1400, height: 420 } });
}
