import type { KlConfig } from '@rlhf/contracts';

/** What a checkpoint stores to resume β exactly. */
export type KlControllerState =
  | { type: 'fixed'; value: number }
  | { type: 'adaptive'; value: number; target: number; horizon: number };

/** The KL coefficient β of the reward, and how it moves after each PPO iteration. */
export interface KlController {
  readonly value: number;
  /** `currentKl`: mean over the batch of Σ_t (log π − log π_ref) (objective/kl); `nSteps`: responses in the batch. */
  update(currentKl: number, nSteps: number): void;
  state(): KlControllerState;
}

/** β stays at its initial value (Ziegler et al. 2019 §2.2, the fixed-β variant). */
export class FixedKlController implements KlController {
  constructor(readonly value: number) {}
  update(currentKl: number, nSteps: number): void {
    checkUpdate(currentKl, nSteps);
  }
  state(): KlControllerState {
    return { type: 'fixed', value: this.value };
  }
}

/**
 * Adaptive β (Ziegler et al. 2019 §2.2): e = clip(KL/target − 1, −0.2, 0.2), β ← β·(1 + e·nSteps/horizon).
 * β rises when the policy drifts past the target KL and falls when it stays closer.
 */
export class AdaptiveKlController implements KlController {
  constructor(
    public value: number,
    readonly target: number,
    readonly horizon: number,
  ) {
    if (!(target > 0) || !(horizon > 0))
      throw new RangeError('AdaptiveKlController: target and horizon must be > 0');
  }
  update(currentKl: number, nSteps: number): void {
    checkUpdate(currentKl, nSteps);
    const error = Math.min(Math.max(currentKl / this.target - 1, -0.2), 0.2);
    this.value *= 1 + (error * nSteps) / this.horizon;
  }
  state(): KlControllerState {
    return { type: 'adaptive', value: this.value, target: this.target, horizon: this.horizon };
  }
}

// A NaN KL would silently poison β for the rest of the run: fail loudly at the iteration that made it.
function checkUpdate(currentKl: number, nSteps: number): void {
  if (!Number.isFinite(currentKl)) throw new RangeError(`KL controller: KL is ${currentKl}`);
  if (!Number.isInteger(nSteps) || nSteps < 1)
    throw new RangeError(`KL controller: nSteps must be >= 1, got ${nSteps}`);
}

/** The controller a PPO config asks for; pass the checkpointed state to resume β where it was. */
export function createKlController(config: KlConfig, state?: KlControllerState): KlController {
  if (state && state.type !== config.type) {
    throw new Error(
      `KL controller: the checkpoint holds a '${state.type}' controller, the config asks for '${config.type}'`,
    );
  }
  const value = state?.value ?? config.coef;
  return config.type === 'adaptive'
    ? new AdaptiveKlController(value, config.target, config.horizon)
    : new FixedKlController(value);
}
