// Files of the OpenAI-compatible API: JSONL in one of OpenAI's fine-tuning formats, validated whole at upload
// (line-numbered errors), stored under files/{teamId}/{fileId}.jsonl; a job converts one to a dataset.
import { createHash, randomBytes } from 'node:crypto';
import type { File as FileRow, Team } from '@rlhf/db';
import { ApiError } from '../errors.js';
import type { Services } from '../services.js';
import { convertFile, type FileFormat, FormatError } from './formats.js';

/** OpenAI's file object. */
export interface FileObject {
  id: string;
  object: 'file';
  bytes: number;
  created_at: number;
  filename: string;
  purpose: string;
  status: 'processed';
  status_details: null;
  expires_at: null;
}

/** An OpenAI-style id, time-ordered (lists sort newest first by id): prefix + base-36 time + 15 random characters. */
export const openaiId = (prefix: string) =>
  `${prefix}${Date.now().toString(36).padStart(9, '0')}${[...randomBytes(15)].map((b) => (b % 36).toString(36)).join('')}`;

export const secondsOf = (date: Date) => Math.floor(date.getTime() / 1000);

export function fileObject(row: FileRow): FileObject {
  return {
    id: row.id,
    object: 'file',
    bytes: Number(row.bytes),
    created_at: secondsOf(row.createdAt),
    filename: row.filename,
    purpose: row.purpose,
    status: 'processed',
    status_details: null,
    expires_at: null,
  };
}

/** Stores an uploaded fine-tuning file; 400 naming the line and field of the first bad row. */
export async function uploadFile(
  s: Services,
  team: Team,
  upload: { filename: string; purpose: string; content: Buffer },
): Promise<FileRow> {
  if (upload.purpose !== 'fine-tune')
    throw new ApiError(
      400,
      'invalid_request',
      `purpose "${upload.purpose}" is not supported (use "fine-tune")`,
      'purpose',
    );
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(upload.content);
  } catch {
    throw new ApiError(400, 'invalid_file', 'the file is not UTF-8 text', 'file');
  }
  let converted: { format: FileFormat; rows: unknown[] };
  try {
    converted = convertFile(text);
  } catch (error) {
    if (error instanceof FormatError)
      throw new ApiError(400, 'invalid_file', `${upload.filename}: ${error.message}`, 'file');
    throw error;
  }
  const id = openaiId('file-');
  const key = `files/${team.id}/${id}.jsonl`;
  await s.artifacts.put(key, upload.content);
  try {
    return await s.prisma.file.create({
      data: {
        id,
        teamId: team.id,
        filename: upload.filename,
        purpose: upload.purpose,
        format: converted.format,
        rows: converted.rows.length,
        bytes: BigInt(upload.content.length),
        sha256: createHash('sha256').update(upload.content).digest('hex'),
        key,
      },
    });
  } catch (error) {
    await s.artifacts.delete(key).catch(() => {});
    throw error;
  }
}

/** One of the team's files; 404 (OpenAI's shape) for anything else. */
export async function findFile(s: Services, team: Team, fileId: string, param = 'file_id'): Promise<FileRow> {
  const row = await s.prisma.file.findFirst({ where: { id: fileId, teamId: team.id } });
  if (!row) throw new ApiError(404, 'not_found', `No such File object: ${fileId}`, param);
  return row;
}

export async function listFiles(s: Services, team: Team, page: { after?: string; limit: number }) {
  const rows = await s.prisma.file.findMany({
    where: { teamId: team.id, ...(page.after ? { id: { lt: page.after } } : {}) },
    orderBy: { id: 'desc' },
    take: page.limit + 1,
  });
  return { rows: rows.slice(0, page.limit), hasMore: rows.length > page.limit };
}

export async function deleteFile(s: Services, team: Team, fileId: string): Promise<void> {
  const row = await findFile(s, team, fileId);
  await s.prisma.file.delete({ where: { id: row.id } });
  await s.artifacts.delete(row.key).catch(() => {});
}
