// node screenshot.cjs URL OUT.png COUNT: open Argo CD's Applications page in headless Chromium,
// wait until it shows COUNT Applications, each Healthy and Synced, and save a screenshot.
// CHROMIUM names the browser (default: chromium on PATH). Run by scripts/argocd-ui/screenshot.sh.
'use strict';

const puppeteer = require('puppeteer-core');

const WIDTH = 1600;
const HEIGHT = 1000;
const TIMEOUT_MS = 60000;

async function main() {
    const [url, out, countArg] = process.argv.slice(2);
    const count = Number(countArg);
    if (!url || !out || !Number.isInteger(count) || count < 1) {
        throw new Error('usage: node screenshot.cjs URL OUT.png COUNT');
    }
    const browser = await puppeteer.launch({
        executablePath: process.env.CHROMIUM || 'chromium',
        headless: true,
        // --no-sandbox: the simulation runs as root, where Chromium's sandbox cannot start.
        args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', `--window-size=${WIDTH},${HEIGHT}`],
        defaultViewport: {width: WIDTH, height: HEIGHT},
    });
    try {
        const page = await browser.newPage();
        // Every Application on one page: the list shows 10 by default ("Items per page: all" is
        // -1 in the UI's view preferences; version 5 is the oldest it does not discard).
        await page.evaluateOnNewDocument(() => {
            window.localStorage.setItem('view_preferences', JSON.stringify({version: 5, pageSizes: {'applications-list': -1}}));
        });
        page.on('pageerror', err => console.error(`screenshot: page error: ${err.message}`));
        await page.goto(url, {waitUntil: 'load', timeout: TIMEOUT_MS});
        try {
            // One tile per Application; its class names the health, its status row the sync.
            await page.waitForFunction(
                n => {
                    const tiles = [...document.querySelectorAll('.applications-list__entry')];
                    return (
                        tiles.length === n &&
                        tiles.every(t => t.classList.contains('applications-list__entry--health-Healthy')) &&
                        tiles.every(t => /\bSynced\b/.test(t.querySelector("[qe-id='applications-tiles-health-status']")?.textContent || ''))
                    );
                },
                {timeout: TIMEOUT_MS, polling: 500},
                count,
            );
        } catch (err) {
            const seen = await page.$$eval('.applications-list__entry', tiles =>
                tiles.map(t => `${t.querySelector('.applications-list__title')?.textContent}: ${t.className}`),
            );
            const failed = out.replace(/\.png$/, '') + '-failed.png';
            await page.screenshot({path: failed, fullPage: true});
            throw new Error(`(what it showed: ${failed}) the page did not show ${count} Healthy and Synced Applications in ${TIMEOUT_MS / 1000}s; it shows ${seen.length}:\n${seen.join('\n')}`);
        }
        // A viewport as tall as the page, so that the fixed sidebar reaches the bottom too.
        const height = await page.evaluate(() => document.documentElement.scrollHeight);
        await page.setViewport({width: WIDTH, height: Math.max(HEIGHT, height)});
        await new Promise(resolve => setTimeout(resolve, 1500)); // layout, icons and fonts settle
        await page.screenshot({path: out});
        console.log(`screenshot: wrote ${out} (${count} Applications)`);
    } finally {
        await browser.close();
    }
}

main().catch(err => {
    console.error(`screenshot: ${err.message}`);
    process.exit(1);
});
