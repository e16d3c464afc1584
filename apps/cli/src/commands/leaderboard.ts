// rlhf leaderboard [--judge reward_model|task|grader|language_model]: every model the team compared, best first (Bradley–Terry, Elo scale).
import { EVAL_JUDGE_TYPES, type EvalJudgeType } from '@rlhf/contracts';
import type { Command } from '../command.js';
import { table } from '../format.js';

export const leaderboard: Command = {
  name: 'leaderboard',
  summary: 'ratings of every model the team compared, with 95 % intervals',
  args: [],
  options: {
    judge: {
      type: 'string',
      description: 'only comparisons by this kind of judge',
      values: [...EVAL_JUDGE_TYPES],
      placeholder: 'JUDGE',
    },
  },
  async run(ctx) {
    const judge = ctx.flags.string('judge') as EvalJudgeType | undefined;
    const board = await (await ctx.client()).leaderboard(judge ? { judge } : {});
    if (ctx.json) {
      ctx.printJson(board);
      return 0;
    }
    ctx.io.stdout.write(
      table(
        ['RANK', 'MODEL', 'RATING', '95% INTERVAL', 'GAMES', 'W-T-L'],
        board.rows.map((r) => [
          String(r.rank),
          r.model,
          r.rating.toFixed(0),
          `[${r.interval.lower.toFixed(0)}, ${r.interval.upper.toFixed(0)}]`,
          String(r.games),
          `${r.wins}-${r.ties}-${r.losses}`,
        ]),
      ),
    );
    return 0;
  },
};
