// Ids we make before a row exists (its files are stored under it first): uuid v7, time-ordered like Prisma's
// uuid(7) defaults, so pages sorted by id stay newest first.
import { randomBytes } from 'node:crypto';

export function uuidv7(): string {
  const hex = Date.now().toString(16).padStart(12, '0') + randomBytes(10).toString('hex');
  const variant = ((Number.parseInt(hex[16], 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
