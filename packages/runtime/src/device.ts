// Where sessions run: the CPU or one CUDA GPU by index.

export type Device = 'cpu' | `cuda:${number}`;

/** Parses 'cpu', 'cuda:N' (N a GPU index) or 'cuda' (= 'cuda:0'). */
export function parseDevice(s: string): Device {
  const text = s.trim().toLowerCase();
  if (text === 'cpu') return 'cpu';
  if (text === 'cuda') return 'cuda:0';
  const match = /^cuda:(\d+)$/.exec(text);
  if (match) return `cuda:${Number(match[1])}`;
  throw new Error(`invalid device '${s}': expected 'cpu' or 'cuda:N' with N a GPU index (e.g. 'cuda:0')`);
}
