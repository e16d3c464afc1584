import { describe, expect, test } from 'vitest';
import { childArgs, parseDeviceList, parseWorkerArgs } from './args.js';

describe('worker command line', () => {
  test('--device and --devices', () => {
    expect(parseWorkerArgs(['--device', 'cuda:1'])).toEqual({ device: 'cuda:1' });
    expect(parseWorkerArgs(['--device', 'cuda'])).toEqual({ device: 'cuda:0' });
    expect(parseWorkerArgs(['--devices', '0,1, 3'])).toEqual({ devices: ['cuda:0', 'cuda:1', 'cuda:3'] });
    expect(parseDeviceList('cpu,cpu')).toEqual(['cpu', 'cpu']);
    expect(() => parseWorkerArgs(['--device', 'gpu0'])).toThrow(/invalid device/);
    expect(() => parseWorkerArgs(['--device', 'cpu', '--devices', '0'])).toThrow(/exclusive/);
    expect(() => parseWorkerArgs(['--devices', ','])).toThrow(/expected a list/);
    expect(() => parseWorkerArgs(['--gpus', '2'])).toThrow();
  });

  test('timing flags are checked and passed on to each worker of a supervisor', () => {
    const args = parseWorkerArgs([
      '--devices',
      '0,1',
      '--prefix',
      'staging',
      '--lock-duration',
      '60000',
      '--stalled-interval',
      '15000',
      '--max-stalled-count',
      '2',
      '--runners',
      './my-runners.ts',
      '--tasks',
      './tasks.ts',
    ]);
    expect(childArgs(args, 'cuda:1')).toEqual([
      '--device',
      'cuda:1',
      '--runners',
      './my-runners.ts',
      '--tasks',
      './tasks.ts',
      '--prefix',
      'staging',
      '--lock-duration',
      '60000',
      '--stalled-interval',
      '15000',
      '--max-stalled-count',
      '2',
    ]);
    expect(() => parseWorkerArgs(['--lock-duration', '5s'])).toThrow(/--lock-duration: expected an integer/);
  });
});
