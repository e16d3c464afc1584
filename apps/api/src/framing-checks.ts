// Submission checks of the stages' `framing` (contracts framing.ts): `chatTemplate: 'model'` needs a run model
// whose tokenizer has a chat template of its own (registered models record it at upload; presets have none).
import type { FieldError, FramingConfig, RunSpec } from '@rlhf/contracts';

/** 400s for stages that ask for the model's chat template on a model without one. */
export function framingErrors(spec: RunSpec, hasChatTemplate: boolean): FieldError[] {
  if (hasChatTemplate) return [];
  return spec.stages.flatMap((stage, i) =>
    (stage.config as { framing?: FramingConfig } | undefined)?.framing?.chatTemplate === 'model'
      ? [
          {
            path: `/stages/${i}/config/framing/chatTemplate`,
            message:
              "'model', but the run's model has no chat template of its own (tokenizer_config.json chat_template); use 'builtin' or leave it out",
          },
        ]
      : [],
  );
}
