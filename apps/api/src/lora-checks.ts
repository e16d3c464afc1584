// Submission checks of every stage's `lora` section against the run's architecture (the schema checked the
// numbers alone): a target module this decoder family lacks, a modulesToSave no module answers to → 400
// naming the field, before anything is stored (the workers would only fail the stage later).
import type { FieldError, ModelPreset, RunSpec } from '@rlhf/contracts';
import {
  type GptConfig,
  LoraError,
  type LoraSection,
  loraSettingsOf,
  presetConfig,
  validateLora,
  validatePromptTuning,
} from '@rlhf/model';

/** The modules a stage trains in full whatever the config says (a reward model's new score head). */
export const stageSavedModules = (kind: string): string[] => (kind === 'reward_model' ? ['score'] : []);

/** Errors of each stage's lora on `model` (the preset's or registered model's config), paths under /stages/i/config/lora. */
export function loraErrors(spec: RunSpec, architecture: ModelPreset | GptConfig): FieldError[] {
  const model = typeof architecture === 'string' ? presetConfig(architecture) : architecture;
  return spec.stages.flatMap((stage, i) => {
    const { lora, promptTuning } =
      (stage.config as { lora?: LoraSection; promptTuning?: { numVirtualTokens: number } } | undefined) ?? {};
    // Prompt tuning's virtual tokens must leave the model positions for the real ones.
    if (promptTuning)
      try {
        validatePromptTuning(model, promptTuning);
      } catch (error) {
        if (!(error instanceof LoraError)) throw error;
        const message = error.message.slice(`${error.field}: `.length);
        return [{ path: `/stages/${i}/config/promptTuning/${error.field}`, message }];
      }
    if (!lora) return [];
    // A reward model adds its scalar head to the trunk; a policy stage drops one.
    const config: GptConfig = { ...model, scalarHead: stage.kind === 'reward_model' };
    try {
      validateLora(config, loraSettingsOf(lora, config, stageSavedModules(stage.kind)));
      return [];
    } catch (error) {
      if (!(error instanceof LoraError)) throw error;
      const message = error.message.slice(`${error.field}: `.length);
      return [{ path: `/stages/${i}/config/lora/${error.field}`, message }];
    }
  });
}

/** loraErrors on the run's architecture: its preset, else its registered model's config.json (stored parsed). */
export function loraErrorsOf(spec: RunSpec, preset: ModelPreset | null, registered: unknown): FieldError[] {
  const architecture = preset ?? (registered as GptConfig | null | undefined);
  return architecture ? loraErrors(spec, architecture) : [];
}
