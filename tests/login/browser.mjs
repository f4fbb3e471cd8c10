// A user in a real headless Chromium, for tests/login/test_login.py: opens a login address,
// signs in on oidc-provider's pages (devInteractions: any name) and consents, or cancels.
//
// Usage: node browser.mjs --url URL [--cancel]          the browser login
//        node browser.mjs --device URI --code CODE        the device login
// Prints {"url": final URL, "text": final page text} on stdout. Chromium: $CHROMIUM, else
// /usr/bin/chromium (Debian's chromium package). Only 127.0.0.1 is reached: any other request
// (the pages' web font) is refused, so no network is needed.
import { createRequire } from 'node:module';
import fs from 'node:fs';

const require = createRequire(new URL('../oauth/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const argv = process.argv.slice(2);
const arg = (name) => { const i = argv.indexOf(name); return i === -1 ? undefined : argv[i + 1]; };
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
if (!fs.existsSync(executablePath)) {
  console.error(`browser.mjs: no Chromium at ${executablePath} (apt-get install chromium, or set CHROMIUM)`);
  process.exit(2);
}

const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(30000);
  await page.route('**/*', (route) => (new URL(route.request().url()).hostname === '127.0.0.1'
    ? route.continue() : route.abort()));
  const submit = async (selector) => {
    await Promise.all([page.waitForNavigation({ waitUntil: 'domcontentloaded' }), page.click(selector)]);
  };
  if (argv.includes('--device')) {
    await page.goto(arg('--device'), { waitUntil: 'domcontentloaded' });
    await page.fill('input[name=user_code]', arg('--code'));
    await Promise.all([page.waitForNavigation({ waitUntil: 'domcontentloaded' }), page.press('input[name=user_code]', 'Enter')]);
    await submit('button[autofocus]');                     // "Continue": yes, it is my device
  } else {
    await page.goto(arg('--url'), { waitUntil: 'domcontentloaded' });
  }
  if (argv.includes('--cancel')) {
    await submit('a[href$="/abort"]');                     // "[ Cancel ]" on the sign-in page
  } else {
    await page.fill('input[name=login]', 'alice');
    await page.fill('input[name=password]', 'any');
    await submit('button[type=submit]');                   // "Sign-in"
    await submit('button[type=submit]');                   // "Continue": consent
  }
  await page.waitForLoadState('domcontentloaded');
  const text = await page.evaluate(() => document.body.innerText);
  process.stdout.write(JSON.stringify({ url: page.url(), text }) + '\n');
} finally {
  await browser.close();
}
