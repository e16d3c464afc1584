import pino, { type DestinationStream, type Logger } from 'pino';

// Where secrets can appear in log objects (request headers, config, key records). Pino's wildcards
// match one level, so common nestings are listed.
const SECRET_PATHS = [
  'authorization',
  'password',
  'apiKey',
  'adminKey',
  'token',
  'databaseUrl',
  'redisUrl',
  'headers.authorization',
  'headers["x-api-key"]',
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  '*.authorization',
  '*.password',
  '*.apiKey',
  '*.adminKey',
  '*.token',
  '*.databaseUrl',
  '*.redisUrl',
];

/** `postgresql://user:secret@host/db` → `postgresql://user:***@host/db`; anything else is returned as is. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password === '') return url;
    parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}

// URLs keep everything but their password; every other secret is replaced.
function censor(value: unknown): unknown {
  return typeof value === 'string' && value.includes('://') ? redactUrl(value) : '[redacted]';
}

/** The pino logger every app uses: JSON lines, secrets redacted. */
export function createLogger(name: string, level: string = 'info', destination?: DestinationStream): Logger {
  const options = { name, level, redact: { paths: SECRET_PATHS, censor } };
  return destination === undefined ? pino(options) : pino(options, destination);
}

export type { Logger };
