// rlhf samples <id> [--stage S] [--limit N]: rollout samples (prompt, response, score, KL), newest first.
import type { Command } from '../command.js';
import { clip, num, table } from '../format.js';
import { findStage, stageKinds } from '../stages.js';

export const samples: Command = {
  name: 'samples',
  summary: 'rollout samples of a run: prompt, response, score, KL, EOS (newest first)',
  args: ['id'],
  options: {
    stage: { type: 'string', description: 'only this stage (kind or id)', placeholder: 'STAGE' },
    limit: { type: 'string', description: 'how many (default 20)', placeholder: 'N' },
  },
  async run(ctx) {
    const client = await ctx.client();
    const run = await client.getRun(ctx.args[0]);
    const stageRef = ctx.flags.string('stage');
    const stageId = stageRef ? findStage(run, stageRef).id : undefined;
    const limit = ctx.flags.integer('limit', 20);
    const items = [];
    let cursor: string | undefined;
    do {
      const page = await client.samples(run.id, {
        limit: Math.min(500, limit - items.length),
        ...(stageId ? { stageId } : {}),
        ...(cursor ? { cursor } : {}),
      });
      items.push(...page.items);
      cursor = page.nextCursor ?? undefined;
    } while (cursor && items.length < limit);
    if (ctx.json) {
      ctx.printJson(items);
      return 0;
    }
    const kinds = stageKinds(run);
    ctx.io.stdout.write(
      table(
        ['STAGE', 'STEP', 'SCORE', 'KL', 'EOS', 'PROMPT', 'RESPONSE'],
        items.map((s) => [
          kinds.get(s.stageId) ?? s.stageId,
          String(s.step),
          num(s.score),
          num(s.kl),
          s.eos ? 'yes' : 'no',
          clip(s.prompt, 40),
          clip(s.response, 60),
        ]),
      ),
    );
    return 0;
  },
};
