/**
 * The first slot of expectation `e` after time `x`, in SQL. An interval counts from `x`.
 * A cron schedule's slots are computed in its time zone by croner (expectations.ts), so DST
 * neither skips nor doubles one; `e.slots` holds every slot after `e.slots_from`, so it
 * answers for an `x` from `slots_from` to before its last slot. Null otherwise (or when `x` is null): the
 * monitor computes those in JavaScript.
 */
export const nextDueSql = (e: string, x: string) =>
  `(case when ${e}.every_s is not null then ${x} + make_interval(secs => ${e}.every_s)
         when ${x} >= ${e}.slots_from then (select min(slot) from unnest(${e}.slots) slot where slot > ${x}) end)`;
