// A canvas laid over a Plotly chart's plot area, for the parts of a per-byte trace that change with
// every threshold step or hover: the threshold line, the patch starts, the line coloured by patch
// (and a dot per byte when zoomed in), and the band of a hovered patch. Redrawing a canvas costs
// about a millisecond; redrawing the chart (its SVG) tens to hundreds, so Plotly draws only the
// entropy line, once per text. What would be denser than a few pixels apart is left out.
// The chart's PNG button saves the chart and this canvas together (see png()).
import { saveFile } from "./downloads.js";
import { PATCH_COLORS } from "./ui.js";

const THRESHOLD_COLOR = "#e15759";
const START_COLOR = "rgba(60, 60, 80, 0.45)";
const BAND_COLOR = "rgba(59, 91, 219, 0.16)";

export class TraceOverlay {
  /** gd: the chart's div, inside a positioned wrapper (.plot-wrap) that the canvas joins. */
  constructor(gd) {
    this.gd = gd;
    this.canvas = document.createElement("canvas");
    this.canvas.className = "overlay";
    this.canvas.setAttribute("aria-hidden", "true");
    gd.parentElement.append(this.canvas);
    this.data = null;       // {patchIds, starts, values, threshold, dots, lines}
    this.band = null;       // [start, end) bytes
    this.listening = false;
  }

  /** Call after every Plotly.react of the chart: follow its zooms, pans and resizes. */
  attach() {
    if (this.listening || !this.gd.on) return;
    this.listening = true;
    this.gd.on("plotly_afterplot", () => this.draw());
    this.gd.on("plotly_relayouting", (event) => this.draw(event["xaxis.range[0]"], event["xaxis.range[1]"]));
  }

  /** What to draw: patchIds (per byte), starts (patch starts, bytes), values (y per byte, for the
   * dots), threshold (nats, or null). Any may be left out. */
  set(data) {
    this.data = data;
    this.draw();
  }

  highlight(start, end) {
    this.band = start == null ? null : [start, end];
    this.canvas.dataset.band = this.band ? this.band.join("-") : "";     // what is lit, for tests and tools
    this.draw();
  }

  clear() {
    this.data = null;
    this.highlight(null);
  }

  /** The plot area and axes as Plotly laid them out (its private _fullLayout: the plot area's
   * size and the axes' current ranges are not public otherwise). */
  frame(x0, x1) {
    const layout = this.gd._fullLayout;
    if (!layout?._size || !layout.xaxis) return null;
    const { l, t, w, h } = layout._size;
    const [r0, r1] = x0 === undefined ? layout.xaxis.range : [x0, x1];
    const [y0, y1] = layout.yaxis.range;
    return { l, t, w, h, x: (v) => ((v - r0) / (r1 - r0)) * w, y: (v) => h - ((v - y0) / (y1 - y0)) * h, r0, r1 };
  }

  draw(x0, x1) {
    const f = this.frame(x0, x1);
    const { canvas } = this;
    const ratio = window.devicePixelRatio || 1;
    if (!f) {
      canvas.width = 0;
      return;
    }
    Object.assign(canvas.style, { left: `${f.l}px`, top: `${f.t}px`, width: `${f.w}px`, height: `${f.h}px` });
    canvas.width = Math.round(f.w * ratio);
    canvas.height = Math.round(f.h * ratio);
    const ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    if (this.band) {
      ctx.fillStyle = BAND_COLOR;
      const a = f.x(this.band[0] - 0.5);
      ctx.fillRect(a, 0, f.x(this.band[1] - 0.5) - a, f.h);
    }
    const d = this.data;
    if (!d) return;
    const first = Math.max(0, Math.ceil(f.r0));
    const last = Math.min(Math.floor(f.r1), (d.values ?? d.patchIds ?? []).length - 1);
    const pixelsPerByte = f.w / Math.max(1, last - first + 1);
    if (d.starts) {
      const starts = visibleStarts(d.starts, first, last);
      if (starts.length <= f.w / 4) {             // at least 4 pixels apart on average
        ctx.strokeStyle = START_COLOR;
        ctx.lineWidth = 1;
        ctx.beginPath();
        for (const s of starts) {
          const x = Math.round(f.x(s - 0.5)) + 0.5;
          ctx.moveTo(x, 0);
          ctx.lineTo(x, f.h);
        }
        ctx.stroke();
      }
    }
    if (d.values && d.patchIds && pixelsPerByte >= 1) {
      // each patch's stretch of the line in its colour (the steps between patches stay grey)
      ctx.lineWidth = 1.5;
      PATCH_COLORS.forEach((color, c) => {      // one path per colour
        ctx.strokeStyle = color;
        ctx.beginPath();
        for (let i = first; i < last; i++) {
          if (d.patchIds[i] !== d.patchIds[i + 1] || d.patchIds[i] % PATCH_COLORS.length !== c) continue;
          ctx.moveTo(f.x(i), f.y(d.values[i]));
          ctx.lineTo(f.x(i + 1), f.y(d.values[i + 1]));
        }
        ctx.stroke();
      });
    }
    if (d.values && d.patchIds && pixelsPerByte >= 5) {
      for (let i = first; i <= last; i++) {
        ctx.fillStyle = PATCH_COLORS[d.patchIds[i] % PATCH_COLORS.length];
        ctx.beginPath();
        ctx.arc(f.x(i), f.y(d.values[i]), 3, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
    if (d.threshold != null) {
      ctx.strokeStyle = THRESHOLD_COLOR;
      ctx.lineWidth = 2;
      ctx.setLineDash([6, 4]);
      ctx.beginPath();
      ctx.moveTo(0, f.y(d.threshold));
      ctx.lineTo(f.w, f.y(d.threshold));
      ctx.stroke();
    }
  }

  /** Save the chart with this overlay as `<filename>.png` (twice the screen's size). */
  async png(filename) {
    const layout = this.gd._fullLayout;
    const { width, height } = layout;
    const { l, t, w, h } = layout._size;
    const url = await Plotly.toImage(this.gd, { format: "png", width, height, scale: 2 });
    const image = new Image();
    image.src = url;
    await image.decode();
    const canvas = document.createElement("canvas");
    canvas.width = width * 2;
    canvas.height = height * 2;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
    ctx.drawImage(this.canvas, l * 2, t * 2, w * 2, h * 2);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    saveFile(`${filename}.png`, blob, "image/png");
  }
}

/** The patch starts in [first, last] but the first byte's (starts sorted), found by binary search. */
function visibleStarts(starts, first, last) {
  let lo = 0;
  let hi = starts.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (starts[mid] < first) lo = mid + 1;
    else hi = mid;
  }
  const out = [];
  for (let j = lo; j < starts.length && starts[j] <= last; j++) if (starts[j] > 0) out.push(starts[j]);
  return out;
}
