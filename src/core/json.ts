/** A JSON value, as stored (json, keys in the order sent) and sent over HTTP (finite numbers only: the validators check). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };
