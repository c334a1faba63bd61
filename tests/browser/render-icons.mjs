// Renders web/icons/*.png from the SVG logos with Debian's chromium: `node tests/browser/render-icons.mjs`.
// The PNGs are committed; run this again after changing a logo SVG.

import { chromium } from 'playwright-core';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const icons = path.join(root, 'web/icons');

const outputs = [
  { svg: 'logo.svg', png: 'icon-192.png', size: 192, transparent: true },
  { svg: 'logo.svg', png: 'icon-512.png', size: 512, transparent: true },
  { svg: 'logo-maskable.svg', png: 'maskable-192.png', size: 192 },
  { svg: 'logo-maskable.svg', png: 'maskable-512.png', size: 512 },
  // iOS rounds the corners itself and shows black behind transparency.
  { svg: 'logo-maskable.svg', png: 'apple-touch-icon.png', size: 180 },
];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
});
try {
  for (const o of outputs) {
    const svg = await readFile(path.join(icons, o.svg), 'utf8');
    const page = await browser.newPage({ viewport: { width: o.size, height: o.size }, deviceScaleFactor: 1 });
    const html = `<!doctype html><style>html,body{margin:0;background:transparent}svg{display:block;width:${o.size}px;height:${o.size}px}</style>${svg}`;
    await page.setContent(html);
    await page.screenshot({ path: path.join(icons, o.png), omitBackground: !!o.transparent });
    await page.close();
    console.log(`wrote web/icons/${o.png}`);
  }
} finally {
  await browser.close();
}
