/*
 * `@devstack/sdk/fastify`: the Fastify plugin, in its own entry point so that only apps that import
 * it need Fastify's types (and load fastify-plugin); the main entry never mentions Fastify.
 */
import fp from 'fastify-plugin';
import type { FastifyPluginCallback } from 'fastify';
import { LANE_HEADER } from '@devstack/core';
import { checkLane, enter, type InboundOptions } from './inbound.js';
import { ensurePropagation } from './otel-globals.js';

const plugin: FastifyPluginCallback<InboundOptions> = (fastify, options, done) => {
  try {
    checkLane(options.lane, 'routingPlugin');
  } catch (error) {
    done(error as Error);
    return;
  }
  ensurePropagation();
  const lane = options.lane;
  fastify.addHook('onRequest', (request, reply, next) => {
    enter(request.raw, reply.raw, lane, (l) => {
      if (!reply.hasHeader(LANE_HEADER)) reply.header(LANE_HEADER, l);
    }, () => next());
  });
  done();
};

/** Fastify plugin: `await app.register(routingPlugin, { lane })`. Applies to the whole app. */
export const routingPlugin = fp(plugin, { fastify: '5.x', name: '@devstack/sdk' });

export type { InboundOptions } from './inbound.js';
