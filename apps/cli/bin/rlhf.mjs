#!/usr/bin/env node
// The `rlhf` command: loads the TypeScript sources through tsx (no build step), then runs the CLI.
import { register } from 'tsx/esm/api';

register();
const { runProcess } = await import('../src/main.ts');
await runProcess();
