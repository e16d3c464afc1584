// The judge of an evaluation job as @rlhf/eval's EvalJudge: a reward model, a task's ground truth, a grader over
// the prompt rows, or a judge language model asked in both orders (its answers cached as they come).
import type { ArtifactStore } from '@rlhf/artifacts';
import type { EvaluationJobData, PromptRow } from '@rlhf/contracts';
import {
  cachedJudge,
  createLanguageModelJudge,
  type EvalJudge,
  type JudgmentCache,
  type JudgmentCounts,
} from '@rlhf/eval';
import { createGrader } from '@rlhf/graders';
import { modelChatTemplate, type Tokenizer } from '@rlhf/model';
import type { Runtime } from '@rlhf/runtime';
import { loadModelAt, tokenizerAt } from './model-files.js';
import { groundTruthOf, type Tasks } from './tasks.js';

export interface BuiltJudge {
  judge: EvalJudge;
  /** Pairwise judge answers computed now and read from the cache (language-model judges). */
  counts: JudgmentCounts;
  release(): Promise<void>;
}

export interface JudgeDeps {
  runtime: Runtime;
  artifacts: ArtifactStore;
  tasks: Tasks;
  rows: readonly PromptRow[];
  /** The policies' tokenizer (length graders counting tokens). */
  tokenizer: Tokenizer;
  judgments: JudgmentCache;
}

export async function buildJudge(spec: EvaluationJobData['judge'], deps: JudgeDeps): Promise<BuiltJudge> {
  const none = { counts: { judged: 0, reused: 0 }, release: async () => {} };
  switch (spec.type) {
    case 'reward_model':
      return {
        ...none,
        judge: {
          kind: 'reward_model',
          model: await loadModelAt(deps.artifacts, spec.key),
          tieMargin: spec.tieMargin,
        },
      };
    case 'task':
      return {
        ...none,
        judge: { kind: 'score', score: groundTruthOf(deps.tasks, spec.name)!, tieMargin: spec.tieMargin },
      };
    case 'grader': {
      const grade = createGrader(spec.grader, { countTokens: (text) => deps.tokenizer.encode(text).length });
      return {
        ...none,
        judge: {
          kind: 'batch_score',
          score: async (indices, responses) =>
            (
              await grade(
                indices.map((i) => deps.rows[i]),
                responses,
              )
            ).scores,
          tieMargin: spec.tieMargin,
        },
      };
    }
    case 'language_model': {
      const tokenizer = await tokenizerAt(deps.artifacts, spec.key);
      const judgeModel = await createLanguageModelJudge({
        runtime: deps.runtime,
        model: await loadModelAt(deps.artifacts, spec.key),
        tokenizer,
        template: spec.template,
        // The judge is a chat model (the API checked): its own template frames the question.
        chatTemplate: modelChatTemplate(tokenizer),
      });
      // The answers depend on the judge's weights (key and digest; its chat template is among its files) and template.
      const cached = cachedJudge(judgeModel.judge, deps.judgments, {
        judge: JSON.stringify([spec.key, spec.version ?? null, spec.template]),
      });
      return {
        judge: { kind: 'pairwise', judge: cached.judge, combine: spec.combine, tieMargin: spec.tieMargin },
        counts: cached.counts,
        release: () => judgeModel.release(),
      };
    }
  }
}
