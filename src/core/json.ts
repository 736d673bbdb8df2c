/** A JSON value, as stored in jsonb and sent over HTTP (finite numbers only: the validators check). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };
