"""Browser tests: a real `loopline serve` and Debian's Chromium driven by Playwright."""
