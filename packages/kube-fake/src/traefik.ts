import type { CustomResourceDefinition } from './types.js';

/** Traefik's IngressRoute and Middleware in both API groups Traefik has served them from. */
export const TRAEFIK_RESOURCES: readonly CustomResourceDefinition[] = ['traefik.io', 'traefik.containo.us'].flatMap((group) => [
  { group, version: 'v1alpha1', kind: 'IngressRoute', plural: 'ingressroutes', singular: 'ingressroute', namespaced: true, categories: ['traefik'] },
  { group, version: 'v1alpha1', kind: 'Middleware', plural: 'middlewares', singular: 'middleware', namespaced: true, categories: ['traefik'] },
]);
