// The JS twin of blt_core.patching.start_mask: the same boundary rule, so the Explore page can
// re-patch cached entropies in the browser. Positions are those of BOS + bytes (position 0 is BOS);
// the result has T+1 entries, entry T saying whether the next byte would open a patch.
// Comparisons are made in float32 (Math.fround), as torch does with float32 entropies.

const OFFSET = 4;   // byte b has id b + 4; ids 0..3 are special (BOS is 1)
const BOS_ID = 1;

function isSpaceLike(id) {
  const b = id - OFFSET;
  const alnum = (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122);
  return b < 0 || (b < 0x80 && !alnum);
}

// The mode's rule for a position p >= 2 (see blt_core.patching.boundary_rule).
function boundaryRule(mode, p, { entropies, ids, threshold, patchSize }) {
  const f = Math.fround;
  switch (mode) {
    case "entropy":
      return f(entropies[p - 1]) > f(threshold);
    case "entropy_monotonic":
      return p === 2 || f(f(entropies[p - 1]) - f(entropies[p - 2])) > f(threshold);
    case "static":
      return (p - 1) % patchSize === 0;
    case "space":
      return isSpaceLike(ids[p - 1]);
    case "byte":
      return true;
    default:
      throw new Error(`unknown patching mode ${mode}`);
  }
}

/**
 * startMask(mode, T, {entropies, ids, threshold, patchSize, maxPatchLength}) -> boolean[T + 1]
 * entropies: nats per position (entropy modes); ids: token ids per position (space mode);
 * maxPatchLength: null for no limit, else longer patches are split every maxPatchLength positions
 * counted from the patch's start.
 */
export function startMask(mode, T, opts) {
  const { maxPatchLength = null } = opts;
  if (mode.startsWith("entropy") && !Number.isFinite(opts.threshold)) {
    throw new Error(`mode ${mode} needs a finite threshold`);
  }
  if (mode === "static" && !(Number.isInteger(opts.patchSize) && opts.patchSize >= 1)) {
    throw new Error(`static patching needs a patch size >= 1, found ${opts.patchSize}`);
  }
  if (maxPatchLength !== null && !(Number.isInteger(maxPatchLength) && maxPatchLength >= 1)) {
    throw new Error(`max patch length must be an integer >= 1 or none, found ${maxPatchLength}`);
  }
  const mask = new Array(T + 1);
  let lastStart = 0;
  for (let p = 0; p <= T; p++) {
    const ruleStart = p <= 1 || boundaryRule(mode, p, opts);
    if (ruleStart) lastStart = p;
    mask[p] = ruleStart || (maxPatchLength !== null && (p - lastStart) % maxPatchLength === 0);
  }
  return mask;
}

/** A start mask -> {starts, lengths, nextStartsPatch} over positions 0..T-1 (lengths sum to T). */
export function patchesFromMask(mask) {
  const T = mask.length - 1;
  const starts = [];
  for (let p = 0; p < T; p++) if (mask[p]) starts.push(p);
  const lengths = starts.map((s, j) => (j + 1 < starts.length ? starts[j + 1] : T) - s);
  return { starts, lengths, nextStartsPatch: mask[T] };
}

/**
 * Patch a text's bytes the way the server does (BOS + bytes).
 * bytes: the UTF-8 bytes; byteEntropies: nats per byte as /api/entropy returns them (the entropy
 * of the prediction made after that byte). Returns per-byte patch ids and the patches of the bytes
 * (BOS's own patch left out) as {start, length} in byte offsets.
 */
export function patchBytes(bytes, byteEntropies, { mode, threshold, patchSize, maxPatchLength }) {
  const T = bytes.length + 1;
  // Position p (1..n) is byte p-1; the rule reads H[p-1] for p >= 2, so the entropy after BOS
  // (position 0) is never read and any finite stand-in works.
  const entropies = byteEntropies ? [0, ...byteEntropies] : null;
  const ids = [BOS_ID, ...bytes.map((b) => b + OFFSET)];
  const mask = startMask(mode, T, { entropies, ids, threshold, patchSize, maxPatchLength });
  const { starts, lengths } = patchesFromMask(mask);
  const patches = starts.slice(1).map((s, j) => ({ start: s - 1, length: lengths[j + 1] }));
  const patchIds = new Array(bytes.length);
  patches.forEach((pt, j) => patchIds.fill(j, pt.start, pt.start + pt.length));
  return { patches, patchIds, nextStartsPatch: mask[T] };
}
