/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS app, written as teams write them */
// An Express front end that asks the inventory gRPC service by its name.
const express = require('express');
const grpc = require('@grpc/grpc-js');
const { service } = require('./inventory-api.cjs');

const Inventory = grpc.makeGenericClientConstructor(service, 'Inventory');
const inventory = new Inventory(process.env.INVENTORY ?? 'inventory:50051', grpc.credentials.createInsecure());

const app = express();
app.get('/', (req, res) => {
  inventory.check({}, (error, answer) => {
    if (error) res.status(502).json({ service: process.env.SERVICE, error: error.message });
    else res.json({ service: process.env.SERVICE, headers: req.headers, next: answer });
  });
});
const server = app.listen(Number(process.env.PORT ?? 8080), '127.0.0.1', () => console.log(`listening ${server.address().port}`));
