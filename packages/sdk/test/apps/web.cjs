/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS app, written as teams write them */
// An Express front end that calls the next service with fetch.
const express = require('express');

const app = express();
app.get('/', async (req, res) => {
  const next = await fetch(process.env.NEXT_URL);
  res.json({ service: process.env.SERVICE, headers: req.headers, nextLane: next.headers.get('x-devstack-lane'), next: await next.json() });
});
const server = app.listen(Number(process.env.PORT ?? 8080), '127.0.0.1', () => console.log(`listening ${server.address().port}`));
