// rlhf eval <spec.json|yaml> [--watch]: start an evaluation (models, prompt set, judge); rlhf evaluation <id>:
// its verdict per pair (and a language-model judge's position bias); rlhf evaluations: the team's list.
import { resolve } from 'node:path';
import type { Command, Context } from '../command.js';
import type { EvaluationView } from '../client.js';
import { readPipelineFile } from '../pipeline-file.js';
import { num, table, time } from '../format.js';

const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** Per pair: W/T/L, win rate and its 95 % interval; mean scores. */
function printResult(ctx: Context, evaluation: EvaluationView): void {
  ctx.print(`evaluation ${evaluation.id} (${evaluation.name}): ${evaluation.status}`);
  if (evaluation.error) ctx.print(`error: ${evaluation.error}`);
  const result = evaluation.result;
  if (!result) return;
  ctx.io.stdout.write(
    table(
      ['A', 'B', 'W', 'T', 'L', 'WIN RATE (A)', '95% INTERVAL'],
      result.pairs.map((p) => [
        p.a,
        p.b,
        String(p.wins),
        String(p.ties),
        String(p.losses),
        pct(p.winRate),
        `[${pct(p.interval.lower)}, ${pct(p.interval.upper)}]`,
      ]),
    ),
  );
  for (const [model, score] of Object.entries(result.meanScores ?? {}))
    ctx.print(`mean score ${model}: ${num(score)}`);
  // A language-model judge, asked in both orders: how often the order changed its verdict.
  for (const p of result.pairs)
    if (p.positionBias)
      ctx.print(
        `position bias ${p.a} vs ${p.b}: ${pct(p.positionBias.flipRate)} of ${p.positionBias.judged} verdicts flipped with the order (${p.positionBias.favouredFirst} favoured the first answer, ${p.positionBias.favouredSecond} the second)`,
      );
  if (result.positionBias)
    ctx.print(
      `position bias overall: ${pct(result.positionBias.flipRate)} flipped, mean P(first better) ${num(result.positionBias.meanFirstPreference)}`,
    );
}

export const evaluate: Command = {
  name: 'eval',
  summary: 'start an evaluation from a JSON or YAML spec (models, datasetId, judge, sampling, seeds)',
  args: ['spec'],
  options: {
    watch: { type: 'boolean', description: 'wait for the verdict and print it (exit 1 unless it succeeded)' },
  },
  async run(ctx) {
    const client = await ctx.client();
    let evaluation = await client.createEvaluation(await readPipelineFile(resolve(ctx.io.cwd, ctx.args[0])));
    if (!ctx.flags.boolean('watch')) {
      if (ctx.json) ctx.printJson(evaluation);
      else ctx.print(`evaluation ${evaluation.id}: ${evaluation.status} (rlhf evaluation ${evaluation.id})`);
      return 0;
    }
    while (!FINISHED.has(evaluation.status)) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      evaluation = await client.getEvaluation(evaluation.id);
    }
    if (ctx.json) ctx.printJson(evaluation);
    else printResult(ctx, evaluation);
    return evaluation.status === 'succeeded' ? 0 : 1;
  },
};

export const evaluation: Command = {
  name: 'evaluation',
  summary: 'an evaluation: status, and per pair W/T/L with the win rate and its 95 % interval',
  args: ['id'],
  options: {},
  async run(ctx) {
    const found = await (await ctx.client()).getEvaluation(ctx.args[0]);
    if (ctx.json) ctx.printJson(found);
    else printResult(ctx, found);
    return 0;
  },
};

export const evaluations: Command = {
  name: 'evaluations',
  summary: "the team's evaluations, newest first",
  args: [],
  options: {},
  async run(ctx) {
    const { items } = await (await ctx.client()).listEvaluations({ limit: 50 });
    if (ctx.json) ctx.printJson(items);
    else
      ctx.io.stdout.write(
        table(
          ['ID', 'NAME', 'STATUS', 'CREATED'],
          items.map((e) => [e.id, e.name, e.status, time(e.createdAt)]),
        ),
      );
    return 0;
  },
};
