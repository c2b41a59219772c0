/**
 * The trend of a figure sampled along a run (heap after GC, RSS): the least-squares slope over the
 * samples, as the memory guard and the soak benchmark judge growth per request.
 *
 * @module
 */

/** One sample: the requests answered so far and the figure then. */
export interface TrendPoint {
  x: number;
  y: number;
}

/** Least-squares slope of y over x (`NaN` with fewer than two points). */
export function slope(points: readonly TrendPoint[]): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  const num = points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0);
  const den = points.reduce((s, p) => s + (p.x - mx) ** 2, 0);
  return num / den;
}
