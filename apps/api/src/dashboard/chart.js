// A line chart of one metric over steps, drawn as SVG: hover shows the values at the nearest step, a drag
// zooms into a step range (double-click resets), smoothing is TensorBoard's debiased exponential moving
// average, and a second run's series of the same metric can be drawn over it.
const SVG_NS = 'http://www.w3.org/2000/svg';
const [W, H, LEFT, RIGHT, TOP, BOTTOM] = [300, 130, 48, 8, 8, 18];

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  node.append(...children.map((c) => (c instanceof Node ? c : String(c))));
  return node;
}

export function fmt(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(2) : String(Number(v.toPrecision(4)));
}

/** TensorBoard's smoothing: an exponential moving average, debiased so that the first points are not pulled to 0. */
export function smooth(points, weight) {
  if (weight <= 0) return points;
  let last = 0;
  let n = 0;
  return points.map(([step, value]) => {
    last = last * weight + (1 - weight) * value;
    n += 1;
    return [step, last / (1 - weight ** n)];
  });
}

/** About `count` round tick values covering [lo, hi]. */
function ticks(lo, hi, count) {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const raw = span / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
    out.push(Number(t.toPrecision(12)));
  return out;
}

/** Index of the point whose step is nearest to `step` (points sorted by step). */
function nearest(points, step) {
  let [lo, hi] = [0, points.length - 1];
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (points[mid][0] < step) lo = mid;
    else hi = mid;
  }
  return Math.abs(points[lo][0] - step) <= Math.abs(points[hi][0] - step) ? lo : hi;
}

/**
 * At most two points (the lowest and the highest) per slice of the x axis, in step order: a long series
 * draws as fast as a short one and keeps its spikes.
 */
function decimate(points, slices) {
  if (points.length <= slices * 2) return points;
  const [first, last] = [points[0][0], points[points.length - 1][0]];
  const out = [];
  let bucket = [];
  let index = 0;
  const flush = () => {
    if (bucket.length === 0) return;
    let [lo, hi] = [bucket[0], bucket[0]];
    for (const p of bucket) {
      if (p[1] < lo[1]) lo = p;
      if (p[1] > hi[1]) hi = p;
    }
    out.push(...(lo === hi ? [lo] : lo[0] < hi[0] ? [lo, hi] : [hi, lo]));
    bucket = [];
  };
  for (const p of points) {
    const slice = Math.min(slices - 1, Math.floor(((p[0] - first) / (last - first || 1)) * slices));
    if (slice !== index) {
      flush();
      index = slice;
    }
    bucket.push(p);
  }
  flush();
  return out;
}

export class LineChart {
  constructor(name) {
    this.name = name;
    this.points = [];
    this.compare = null;
    this.smoothing = 0;
    this.zoom = null; // [fromStep, toStep] or null for everything
    this.hoverX = null; // the pointer's x in viewBox units while it is over the chart
    this.drag = null;
    this.value = document.createElement('b');
    this.tip = Object.assign(document.createElement('div'), { className: 'tip', hidden: true });
    this.svg = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img' });
    const caption = document.createElement('figcaption');
    const label = Object.assign(document.createElement('span'), { className: 'name', textContent: name });
    caption.append(label, this.value);
    this.element = Object.assign(document.createElement('figure'), { className: 'chart' });
    this.element.dataset.metric = name;
    this.element.append(caption, this.svg, this.tip);
    this.listen();
  }

  /** `points` and `compare` are [step, value] pairs sorted by step; `compare` may be null. */
  update(points, compare, smoothing) {
    this.points = points;
    this.compare = compare && compare.length > 0 ? compare : null;
    this.smoothing = smoothing;
    this.element.dataset.points = String(points.length);
    this.draw();
  }

  viewX(event) {
    const box = this.svg.getBoundingClientRect();
    return ((event.clientX - box.left) / box.width) * W;
  }

  listen() {
    this.svg.addEventListener('pointermove', (event) => {
      this.hoverX = this.viewX(event);
      if (this.drag) this.drag.to = this.hoverX;
      this.draw();
    });
    this.svg.addEventListener('pointerleave', () => {
      this.hoverX = null;
      this.drag = null;
      this.draw();
    });
    this.svg.addEventListener('pointerdown', (event) => {
      const x = this.viewX(event);
      this.drag = { from: x, to: x };
      this.svg.setPointerCapture?.(event.pointerId);
    });
    this.svg.addEventListener('pointerup', () => {
      const drag = this.drag;
      this.drag = null;
      if (drag && Math.abs(drag.to - drag.from) > 4 && this.scale) {
        const [a, b] = [drag.from, drag.to].map(this.scale.stepAt).sort((p, q) => p - q);
        if (b > a) this.zoom = [a, b];
      }
      this.draw();
    });
    this.svg.addEventListener('dblclick', () => {
      this.zoom = null;
      this.draw();
    });
  }

  draw() {
    const { points } = this;
    if (points.length === 0) {
      this.svg.replaceChildren();
      this.value.textContent = '';
      return;
    }
    const inView = (p) => !this.zoom || (p[0] >= this.zoom[0] && p[0] <= this.zoom[1]);
    const main = points.filter(inView);
    const other = this.compare?.filter(inView) ?? [];
    const shown = main.length > 0 ? main : points;
    const smoothed = smooth(points, this.smoothing).filter(inView);
    const smoothedOther = this.compare ? smooth(this.compare, this.smoothing).filter(inView) : [];
    const all = [...shown, ...other];
    let [x0, x1] = this.zoom ?? [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
    let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
    if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
    if (y0 === y1) {
      const pad = Math.abs(y0) * 0.1 || 1;
      [y0, y1] = [y0 - pad, y1 + pad];
    }
    const x = (step) => LEFT + ((step - x0) / (x1 - x0)) * (W - LEFT - RIGHT);
    const y = (value) => TOP + (1 - (value - y0) / (y1 - y0)) * (H - TOP - BOTTOM);
    const stepAt = (vx) => Math.round(x0 + ((vx - LEFT) / (W - LEFT - RIGHT)) * (x1 - x0));
    this.scale = { stepAt };
    const line = (all, cls) => {
      const series = decimate(all, W - LEFT - RIGHT);
      return series.length === 1
        ? svg('circle', { class: `dot ${cls}`, cx: x(series[0][0]), cy: y(series[0][1]), r: 2.5 })
        : svg('polyline', {
            class: cls,
            points: series.map(([s, v]) => `${x(s).toFixed(1)},${y(v).toFixed(1)}`).join(' '),
          });
    };
    const children = [];
    for (const t of ticks(y0, y1, 3)) {
      children.push(svg('line', { class: 'gridline', x1: LEFT, x2: W - RIGHT, y1: y(t), y2: y(t) }));
      children.push(svg('text', { x: LEFT - 3, y: y(t) + 3, 'text-anchor': 'end' }, fmt(t)));
    }
    for (const t of ticks(x0, x1, 4).filter((t) => Number.isInteger(t))) {
      // Labels at either end are anchored inwards, so they are not cut off.
      const anchor = x(t) > W - RIGHT - 12 ? 'end' : x(t) < LEFT + 12 ? 'start' : 'middle';
      children.push(svg('text', { x: x(t), y: H - 4, 'text-anchor': anchor }, String(t)));
    }
    children.push(svg('path', { class: 'axis', d: `M${LEFT},${TOP}V${H - BOTTOM}H${W - RIGHT}` }));
    const clip = `clip-${Math.random().toString(36).slice(2)}`;
    children.push(
      svg(
        'clipPath',
        { id: clip },
        svg('rect', { x: LEFT, y: 0, width: W - LEFT - RIGHT, height: H - BOTTOM }),
      ),
    );
    const plot = svg('g', { 'clip-path': `url(#${clip})` });
    if (this.compare) {
      if (this.smoothing > 0 && other.length > 0) plot.append(line(other, 'raw compare'));
      if (smoothedOther.length > 0) plot.append(line(smoothedOther, 'line compare'));
    }
    if (this.smoothing > 0) plot.append(line(shown, 'raw'));
    plot.append(line(smoothed.length > 0 ? smoothed : shown, 'line'));
    children.push(plot);

    const last = points[points.length - 1];
    this.value.textContent = fmt(last[1]);
    this.value.title = `step ${last[0]}, ${points.length} points`;
    this.tip.hidden = true;
    if (this.drag && Math.abs(this.drag.to - this.drag.from) > 1) {
      const [a, b] = [this.drag.from, this.drag.to].sort((p, q) => p - q);
      children.push(svg('rect', { class: 'brush', x: a, y: TOP, width: b - a, height: H - TOP - BOTTOM }));
    } else if (this.hoverX !== null && this.hoverX >= LEFT) {
      this.hover(children, shown, smoothed, other, x, y, stepAt(this.hoverX));
    }
    if (this.zoom)
      children.push(svg('text', { x: W - RIGHT, y: TOP + 8, 'text-anchor': 'end' }, 'zoomed (double-click)'));
    this.svg.replaceChildren(
      svg('title', {}, `${this.name}: ${points.length} points, last at step ${last[0]}`),
      ...children,
    );
  }

  hover(children, shown, smoothed, other, x, y, step) {
    const i = nearest(shown, step);
    const [s, v] = shown[i];
    children.push(svg('line', { class: 'cursor', x1: x(s), x2: x(s), y1: TOP, y2: H - BOTTOM }));
    children.push(svg('circle', { class: 'dot', cx: x(s), cy: y(v), r: 3 }));
    const lines = [`step ${s}: ${fmt(v)}`];
    if (this.smoothing > 0) lines.push(`smoothed ${fmt(smoothed[i]?.[1])}`);
    if (other.length > 0) {
      const [os, ov] = other[nearest(other, s)];
      children.push(svg('circle', { class: 'dot compare', cx: x(os), cy: y(ov), r: 3 }));
      lines.push(`other run, step ${os}: ${fmt(ov)}`);
    }
    this.tip.textContent = lines.join(' · ');
    this.tip.hidden = false;
    const box = this.svg.getBoundingClientRect();
    const px = (x(s) / W) * box.width;
    this.tip.style.top = '18px';
    this.tip.style.left = px > box.width / 2 ? '' : `${px + 12}px`;
    this.tip.style.right = px > box.width / 2 ? `${box.width - px + 12}px` : '';
  }
}
