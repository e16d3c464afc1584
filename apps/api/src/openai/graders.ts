// OpenAI's reinforcement graders as our grader specs (packages/contracts graders.ts). Mapped: string_check,
// text_similarity (the metrics we compute) and multi whose calculate_output is a weighted sum, a min or a
// product of its graders. Model and code graders (score_model, label_model, python, endpoint) would need a
// judge model or a sandbox we do not run: 400 naming them.
import { ApiError } from '../errors.js';

export const GRADER_PARAM = 'method.reinforcement.grader';
const bad = (message: string, param: string) => new ApiError(400, 'invalid_request', message, param);
const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

// OpenAI's text_similarity metrics that ours compute.
const SIMILARITY: Record<string, string> = { fuzzy_match: 'edit_distance', bleu: 'bleu', rouge_l: 'rouge_l' };
const UNSUPPORTED: Record<string, string> = {
  score_model: 'it needs a judge model',
  label_model: 'it needs a judge model',
  python: 'running user code needs a sandbox this service does not have',
  endpoint: 'calling out to an endpoint is not allowed here',
};

/** A name as our graders take it (lowercase letters, digits, _ and -, starting with a letter or digit). */
const graderName = (name: string) =>
  name
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '_')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 64);

/**
 * OpenAI's grader (string_check, text_similarity on `{{sample.output_text}}`, multi) as our grader spec;
 * `{{item.x}}` references keep their meaning. Other types: 400 naming the field.
 */
export function openaiGrader(grader: Record<string, unknown>, param = GRADER_PARAM): Record<string, unknown> {
  const { type, name, input, reference } = grader;
  const named = typeof name === 'string' && /[a-z0-9]/i.test(name) ? { name: graderName(name) } : {};
  if (type === 'multi') return multiGrader(grader, named, param);
  if (input !== undefined && input !== '{{sample.output_text}}')
    throw bad('only "{{sample.output_text}}" can be graded', `${param}.input`);
  if (type === 'string_check') return { type, ...named, operation: grader.operation, reference };
  if (type === 'text_similarity') {
    const metric = SIMILARITY[String(grader.evaluation_metric)];
    if (!metric)
      throw bad(
        `evaluation_metric must be one of ${Object.keys(SIMILARITY).join(', ')}`,
        `${param}.evaluation_metric`,
      );
    return { type, ...named, metric, reference };
  }
  const why = typeof type === 'string' ? UNSUPPORTED[type] : undefined;
  if (why) throw bad(`grader type ${type} is not supported here: ${why}`, `${param}.type`);
  throw bad(
    `grader type ${JSON.stringify(type)} is not supported here (string_check, text_similarity, multi)`,
    `${param}.type`,
  );
}

/** multi: `graders` by name (or one grader, as the SDK types it) combined by `calculate_output`. */
function multiGrader(
  grader: Record<string, unknown>,
  named: { name?: string },
  param: string,
): Record<string, unknown> {
  const given = grader.graders;
  if (!isObject(given)) throw bad('graders must be an object of graders by name', `${param}.graders`);
  const entries: [string, unknown][] =
    typeof given.type === 'string' ? [[String(given.name ?? given.type), given]] : Object.entries(given);
  if (entries.length === 0) throw bad('graders must name at least one grader', `${param}.graders`);
  const children = entries.map(([key, child]) => {
    if (!isObject(child)) throw bad(`grader ${key} must be an object`, `${param}.graders.${key}`);
    return { key, spec: { ...openaiGrader(child, `${param}.graders.${key}`), name: graderName(key) } };
  });
  const formula = grader.calculate_output;
  if (typeof formula !== 'string' || formula.length === 0 || formula.length > 1000)
    throw bad('calculate_output must be a formula over the graders’ names', `${param}.calculate_output`);
  const names = new Map(children.map((c) => [c.key, c.spec.name]));
  const combined = combination(formula, names, `${param}.calculate_output`);
  return { type: 'multi', ...named, graders: children.map((c) => c.spec), ...combined };
}

type Combination =
  | { combine: 'weighted_sum'; weights: Record<string, number> }
  | { combine: 'min' }
  | { combine: 'product' };

/**
 * The combination a formula means, for the shapes our multi computes: Σ wᵢ·nameᵢ (any mix of +, −, numeric
 * factors and divisors, parentheses), min(names…), or name·name·…; anything else is a 400.
 */
export function combination(formula: string, names: ReadonlyMap<string, string>, param: string): Combination {
  const fail = (why: string): never => {
    throw bad(`calculate_output ${JSON.stringify(formula)}: ${why}`, param);
  };
  const tokens = formula.match(/\s*([A-Za-z_][A-Za-z0-9_-]*|\d+(?:\.\d+)?(?:e[+-]?\d+)?|\S)/g) ?? [];
  const list = tokens.map((t) => t.trim());
  let at = 0;
  const peek = () => list[at];
  const take = (expected?: string) => {
    const token = list[at++];
    if (expected !== undefined && token !== expected) fail(`expected ${expected}`);
    return token;
  };
  const ofName = (token: string) => {
    const name = names.get(token);
    if (name === undefined) fail(`${token} is not one of the graders (${[...names.keys()].join(', ')})`);
    return name as string;
  };
  // min(a, b, …) and a * b * … of plain names.
  if (/^min\s*\(/.test(formula.trim())) {
    take('min');
    take('(');
    const used = [ofName(take())];
    while (peek() === ',') {
      take(',');
      used.push(ofName(take()));
    }
    take(')');
    if (at < list.length) fail('only min(names…) is supported as a minimum');
    if (new Set(used).size !== names.size) fail('min must use every grader once');
    return { combine: 'min' };
  }
  const factors = formula.split('*').map((f) => f.trim());
  if (factors.length === names.size && factors.length > 1 && factors.every((f) => names.has(f))) {
    if (new Set(factors).size !== names.size) fail('a product must use every grader once');
    return { combine: 'product' };
  }
  // Linear forms: each subexpression is { constant, weights by grader }.
  type Linear = { c: number; w: Map<string, number> };
  const scale = (x: Linear, k: number): Linear => ({
    c: x.c * k,
    w: new Map([...x.w].map(([n, v]) => [n, v * k])),
  });
  const add = (x: Linear, y: Linear): Linear => {
    const w = new Map(x.w);
    for (const [n, v] of y.w) w.set(n, (w.get(n) ?? 0) + v);
    return { c: x.c + y.c, w };
  };
  const expression = (): Linear => {
    let value = term();
    while (peek() === '+' || peek() === '-') value = add(value, take() === '+' ? term() : scale(term(), -1));
    return value;
  };
  const term = (): Linear => {
    let value = factor();
    while (peek() === '*' || peek() === '/') {
      const op = take();
      const right = factor();
      if (op === '/') {
        if (right.w.size > 0 || right.c === 0) fail('only division by a nonzero number is supported');
        value = scale(value, 1 / right.c);
      } else if (right.w.size === 0) value = scale(value, right.c);
      else if (value.w.size === 0) value = scale(right, value.c);
      else fail('a product of graders mixed with other terms is not supported');
    }
    return value;
  };
  const factor = (): Linear => {
    const token = take();
    if (token === undefined) return fail('unexpected end');
    if (token === '(') {
      const inner = expression();
      take(')');
      return inner;
    }
    if (token === '-') return scale(factor(), -1);
    if (/^\d/.test(token)) return { c: Number(token), w: new Map() };
    return { c: 0, w: new Map([[ofName(token), 1]]) };
  };
  const linear = expression();
  if (at < list.length) fail(`unexpected ${list[at]}`);
  if (linear.c !== 0) fail('a constant term is not supported (a weighted sum of the graders has none)');
  const weights = Object.fromEntries([...names.values()].map((n) => [n, linear.w.get(n) ?? 0]));
  return { combine: 'weighted_sum', weights };
}
