import type t from 'tap';

/** The test object a `t.test` callback receives (tap exports no name for it). */
export type Test = Parameters<Parameters<typeof t.test>[0]>[0];
