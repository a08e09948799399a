/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS app, written as teams write them */
// A Fastify front end that calls the next service with fetch.
const Fastify = require('fastify');

const app = Fastify();
app.get('/', async (req, reply) => {
  const next = await fetch(process.env.NEXT_URL);
  reply.send({ service: process.env.SERVICE, headers: req.headers, nextLane: next.headers.get('x-devstack-lane'), next: await next.json() });
});
app.listen({ port: Number(process.env.PORT ?? 8080), host: '127.0.0.1' }).then(() => console.log(`listening ${app.server.address().port}`));
