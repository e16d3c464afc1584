// Headless Chromium for the dashboard tests: Debian's package (.ci/run installs it), driven by playwright-core.
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Launches the system Chromium; a clear error (not a skip) when it is not installed. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `${CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium (.ci/run does)`,
    );
  return chromium.launch({ executablePath: CHROMIUM });
}
