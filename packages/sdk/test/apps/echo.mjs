// A leaf service: answers with the headers it was sent.
import http from 'node:http';

const server = http.createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ service: process.env.SERVICE, headers: req.headers }));
});
server.listen(Number(process.env.PORT ?? 8080), '127.0.0.1', () => console.log(`listening ${server.address().port}`));
