import { createRuntime } from '@rlhf/runtime';
import * as G from '@rlhf/graph';
const runtime = await createRuntime({ device: 'cpu' });
const r2 = await G.checkGradients((w) => G.reduceSum(G.mul(w, w)), [[3]], { runtime });
console.log(r2);
await runtime.close();
