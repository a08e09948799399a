/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS app, written as teams write them */
// A node:http service that asks the next one with http.get and wraps its answer.
const http = require('node:http');

const server = http.createServer((req, res) => {
  http
    .get(process.env.NEXT_URL, (next) => {
      let body = '';
      next.setEncoding('utf8');
      next.on('data', (chunk) => (body += chunk));
      next.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ service: process.env.SERVICE, headers: req.headers, nextLane: next.headers['x-devstack-lane'] ?? null, next: JSON.parse(body) }));
      });
    })
    .on('error', (error) => {
      res.statusCode = 502;
      res.end(JSON.stringify({ service: process.env.SERVICE, error: error.message }));
    });
});
server.listen(Number(process.env.PORT ?? 8080), '127.0.0.1', () => console.log(`listening ${server.address().port}`));
