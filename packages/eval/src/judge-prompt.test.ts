// The judge prompt as the judge model sees it: the template filled in one pass, as a user turn of the built-in
// chat format or of the model's own Jinja chat template (expected strings written out by hand).
import { parseChatTemplate } from '@rlhf/model';
import { describe, expect, it } from 'vitest';
import { renderJudgePrompt } from './language-model-judge.js';

const request = { prompt: 'sort 2 1:', first: '1 2', second: '{prompt}' };

describe('renderJudgePrompt', () => {
  it('fills the template once (a response naming a placeholder stays as written)', () => {
    expect(renderJudgePrompt('Q {prompt} A {first} B {second}', request, false)).toBe(
      'Q sort 2 1: A 1 2 B {prompt}',
    );
  });

  it('renders a user turn of the built-in format, or of the model’s own chat template', () => {
    expect(renderJudgePrompt('{first}|{second}', request, true)).toBe(
      '<|user|>\n1 2|{prompt}\n<|assistant|>\n',
    );
    const own = parseChatTemplate(
      '{% for m in messages %}<{{ m.role }}>{{ m.content }}</{{ m.role }}>{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}',
    );
    expect(renderJudgePrompt('{first}|{second}', request, true, own)).toBe(
      '<user>1 2|{prompt}</user><assistant>',
    );
  });
});
