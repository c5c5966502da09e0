// The Lightning step count a motion-module file name promises, the same rule as motion/formats.py
// lightning_steps_from_name (tests/fixtures/lightning_step_names.json holds the cases both must agree on).
// Renamed copies keep "lightning" and the step count: animatediff-lightning-4steps-1.5.safetensors, ...
const LIGHTNING_NAME = /lightning[^0-9]*?([1248])[ _-]?steps?(?![0-9])/iu; // u: Unicode case folding, as Python's re.IGNORECASE

/** @returns {number|null} 1, 2, 4 or 8, or null when the name is not a Lightning file's. */
export function lightningStepsFromName(name) {
  if (typeof name !== "string") return null;
  const base = name.replaceAll("\\", "/").split("/").pop();
  const match = LIGHTNING_NAME.exec(base);
  return match ? Number(match[1]) : null;
}
