/** The three bodies: a small and a large GET response, and a large POST streamed through. */
import type { BenchOptions } from './options.ts';

export interface Scenario {
  id: 'small' | 'large' | 'post';
  label: string;
  method: 'GET' | 'POST';
  path: string;
  body: Buffer | undefined;
}

export function formatBytes(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} B`;
}

export function scenarios(o: BenchOptions): Scenario[] {
  const all: Scenario[] = [
    { id: 'small', label: `GET, ${formatBytes(o.smallBody)} response`, method: 'GET', path: `/bytes/${o.smallBody}`, body: undefined },
    { id: 'large', label: `GET, ${formatBytes(o.largeBody)} response`, method: 'GET', path: `/bytes/${o.largeBody}`, body: undefined },
    { id: 'post', label: `POST, ${formatBytes(o.postBody)} request streamed`, method: 'POST', path: '/upload', body: Buffer.alloc(o.postBody, 'p') },
  ];
  return all.filter((s) => o.scenarios.includes(s.id));
}
